"""What the studio of lesson 06 reads and writes, kept apart from its widgets.

The model files a folder offers (with what their headers say, and only those of the current
quick/full mode), photos arriving as uploads or from the Colab webcam, PNG bytes for display,
and results saved under new numbered names. None of it needs a browser, so each piece is tested
on its own.
"""
from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from .checkpoints import CheckpointError, read_model_file
from .image_io import save_image


@dataclass(frozen=True)
class ModelChoice:
    """One usable model file, with what its header says."""

    path: Path
    kind: str
    metadata: dict[str, Any]

    @property
    def label(self) -> str:
        style = self.metadata.get("style")
        return f"{self.path.stem} ({self.kind}{', style: ' + str(style) if style else ''})"

    def describe(self) -> str:
        details = ", ".join(f"{key}: {_short(value)}" for key, value in self.metadata.items()) or "no metadata"
        return f"{self.path.name}: {self.kind} model; {details}"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def find_models(folder: str | Path) -> tuple[list[ModelChoice], list[str]]:
    """The ``*.pt`` model files in ``folder`` that :func:`read_model_file` accepts, and a note per rejected one.

    Each mode keeps its models in its own folder (:func:`~facestyle_utils.checkpoints.default_model_path`),
    so the studio's default folder holds only the current mode's models. Returns (choices sorted by file
    name, ``"skipped <file>: <reason>"`` notes); a missing folder gives
    two empty lists.
    """
    folder = Path(folder)
    found, rejected = [], []
    for path in sorted(folder.glob("*.pt")) if folder.is_dir() else []:
        try:
            data = read_model_file(path)
        except CheckpointError as err:
            reason = re.sub(r" \(\w+(Error|Exception): .*\)$", "", str(err).removeprefix(f"{path}: "), flags=re.S)
            rejected.append(f"skipped {path.name}: {reason}")
            continue
        found.append(ModelChoice(path, data["kind"], dict(data["metadata"])))
    return found, rejected


def png_bytes(image: Image.Image) -> bytes:
    """PNG-encode a PIL image (what an ``ipywidgets.Image`` displays)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def next_free_path(folder: Path, stem: str, suffix: str = ".png") -> Path:
    """``folder/stem_001.png``, or the first higher number not taken yet."""
    number = 1
    while (folder / f"{stem}_{number:03d}{suffix}").exists():
        number += 1
    return folder / f"{stem}_{number:03d}{suffix}"


def save_new(image: Image.Image, folder: Path, stem: str, tries: int = 100) -> Path:
    """Save ``image`` as ``folder/<stem>_NNN.png`` under the first free number; never overwrites a file.

    Another process may take the same number between the check and the write: then the next number is
    tried, up to ``tries`` times (FileExistsError after that). Returns the path written.
    """
    for _ in range(tries):
        try:
            return save_image(image, next_free_path(folder, stem))
        except FileExistsError:
            continue
    raise FileExistsError(f"Could not find a free file name in {folder}")


def uploaded_files(value: Any) -> list[tuple[str, bytes]]:
    """(name, bytes) for each file in a ``FileUpload`` value (ipywidgets 8 tuple or 7.x dict)."""
    if isinstance(value, dict):  # ipywidgets 7: {name: {"metadata": {...}, "content": bytes}}
        return [(name, bytes(item["content"])) for name, item in value.items()]
    return [(item["name"], bytes(item["content"])) for item in value or ()]


# JavaScript for the Colab webcam button: show the camera, wait for a click, return a JPEG data URL.
WEBCAM_JS = """
async function facestyleSnapshot(quality) {
  const panel = document.createElement('div');
  const shoot = document.createElement('button');
  shoot.textContent = 'Take the photo';
  const video = document.createElement('video');
  video.style.display = 'block';
  panel.appendChild(video);
  panel.appendChild(shoot);
  document.body.appendChild(panel);
  const stream = await navigator.mediaDevices.getUserMedia({video: true});
  video.srcObject = stream;
  await video.play();
  google.colab.output.setIframeHeight(document.documentElement.scrollHeight, true);
  await new Promise((done) => shoot.onclick = done);
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext('2d').drawImage(video, 0, 0);
  stream.getTracks().forEach((track) => track.stop());
  panel.remove();
  return canvas.toDataURL('image/jpeg', quality);
}
"""


def colab_webcam_photo(quality: float = 0.9) -> bytes:
    """Take a photo with the browser's webcam on Google Colab; JPEG bytes. Raises RuntimeError elsewhere."""
    try:
        from google.colab.output import eval_js  # type: ignore[import-not-found]
        from IPython.display import Javascript, display
    except ImportError:
        raise RuntimeError("webcam capture needs Google Colab; here, upload a photo instead") from None
    display(Javascript(WEBCAM_JS))
    data_url = eval_js(f"facestyleSnapshot({quality})")
    return base64.b64decode(data_url.split(",", 1)[1])
