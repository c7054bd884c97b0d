"""facestyle_utils: the helper package behind the face style transfer course.

One module per concept, so the code behind any notebook cell is easy to find:

- ``image_io``: load/save images robustly; PIL/array/tensor conversions
- ``sample_data``: public-domain faces and styles bundled in installed packages
- ``runtime``: device choice, seeding, quick/full mode, output folders, environment report
- ``vgg``: the frozen VGG19 feature extractor with offline Oxford weights
- ``losses``: content, Gram/style, mean-std and total-variation losses
- ``colour``: colour preservation
- ``gatys``: style transfer by optimisation
- ``plotting``: image grids and curves saved under build/figures
"""

__version__ = "0.1.0"
