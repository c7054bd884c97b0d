"""The interactive studio of lesson 06: an ipywidgets app to stylize a face, built by one function.

:func:`build_studio` returns a :class:`StudioApp`; its ``.widget`` is the widget tree to display and
every control is an attribute (``app.strength``, ``app.method``, ``app.save_button``...), so tests and
notebook cells drive the app exactly as a person would: set ``.value``, call ``.click()``.

How it stays responsive:

- the expensive work (a network pass, or Gatys optimisation) runs in a worker thread, one at a time,
  with a progress bar; a request counter makes a newer request supersede an older one (an optimisation
  that has been overtaken stops at its next step; a finished but outdated result is never shown);
- changes from sliders are debounced (sliders report only on release, and a short timer merges bursts);
- strength and colour preservation only re-blend the last raw result, so they update instantly.

Every failure (no face found, an unreadable upload, a missing or corrupt model file) becomes a short
message in the status line; no traceback reaches the learner. What the app reads and writes (model
files, uploads, the webcam, saved PNGs) lives in :mod:`facestyle_utils.studio_io`.
"""
from __future__ import annotations

import contextlib
import datetime
import functools
import html
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import ipywidgets as widgets
import torch
from PIL import Image

from . import runtime
from .checkpoints import CheckpointError, load_model, read_model_file
from .colour import preserve_colour
from .faces import align_face, detect_faces
from .image_io import ImageLoadError, image_to_tensor, load_image, resize_image, save_image, tensor_to_image
from .inference import Stylizer, blend
from .sample_data import list_samples, load_sample
from .studio_io import ModelChoice, colab_webcam_photo, find_models, next_free_path, png_bytes, uploaded_files

#: Value of the method dropdown that selects optimisation (lesson 02) instead of a model file.
OPTIMISATION = "optimisation"
#: Model kinds that take a style image as a second input (lesson 04's DRN); the others have one style built in.
STYLE_INPUT_KINDS = frozenset({"drn"})
#: Crop modes: find the face automatically, or use the box set by the three crop sliders.
CROP_MODES = ("detect face", "manual box")
#: Uploaded photos are shrunk to this longest side on arrival (detection and cropping need no more).
UPLOAD_MAX_SIDE = 1600
DISPLAY_WIDTH = 256  # pixels on screen for the before and after images
UPLOAD_KEY = "upload:"
WEBCAM_KEY = "webcam:"


class NoFaceError(ValueError):
    """Face detection found nothing in the chosen photo."""


class Superseded(Exception):
    """Raised inside a running job when a newer request has replaced it."""


@functools.lru_cache(maxsize=2)
def shared_vgg(device: str = "cpu"):
    """One frozen VGG19 per device for the optimisation method and every DCNN model (building one takes seconds)."""
    from .vgg import load_vgg19

    return load_vgg19(device=device)


def friendly_error(err: BaseException) -> str:
    """A one-line message for the status area: what went wrong and what to try."""
    text = str(err).strip() or type(err).__name__
    if isinstance(err, NoFaceError):
        return f"{text}. Choose 'manual box' under crop and place the box with the sliders."
    if isinstance(err, ImageLoadError):
        return f"Could not read the photo: {text}"
    if isinstance(err, CheckpointError):
        return f"Model file problem: {text}. Pick another model or the optimisation method."
    if isinstance(err, (FileNotFoundError, FileExistsError, ValueError, KeyError)):
        return text
    if isinstance(err, (RuntimeError, MemoryError)) and "out of memory" in text.lower():
        return "Out of memory: lower the output size."
    return f"Unexpected problem ({type(err).__name__}): {text}"


@dataclass(frozen=True)
class Request:
    """A snapshot of every setting a result depends on, taken when the request is made."""

    number: int
    source: str
    crop_mode: str
    box: tuple[float, float, float]
    size: int
    method: str
    style: str
    steps: int


class StudioApp:
    """The studio's state and controls. Build it with :func:`build_studio`; display ``app.widget``."""

    def __init__(self, models_dir: str | Path | None = None, device: torch.device | str | None = None, *,
                 background: bool | None = None, debounce_s: float = 0.4,
                 webcam: Callable[[], bytes] | None = None) -> None:
        self.device = runtime.pick_device(device)
        self.models_dir = Path(models_dir) if models_dir is not None else runtime.output_dir("models")
        # Colab does not show widget changes made from another thread (googlecolab/colabtools#3373),
        # so there the work runs in the callback itself.
        self.background = (not runtime.in_colab()) if background is None else background
        self.debounce_s = debounce_s
        self._webcam = webcam if webcam is not None else (colab_webcam_photo if runtime.in_colab() else None)
        self._photos: dict[str, Image.Image] = {}  # source key -> full photo (bundled or uploaded)
        self._faces_cache: dict[str, list] = {}
        self._styles: dict[str, Image.Image] = {}
        self._runners: dict[Path, tuple[str, Any]] = {}
        self._models: dict[str, ModelChoice] = {}
        self._lock = threading.RLock()  # guards the counters and published state
        self._compute = threading.Lock()  # one heavy job at a time
        self._latest = 0  # number of the newest request
        self._timer: threading.Timer | None = None
        self._mute = 0
        self._threads: list[threading.Thread] = []
        self._raw: torch.Tensor | None = None  # stylized crop before strength/colour, (1, 3, H, W)
        self._raw_request: Request | None = None
        self._before: torch.Tensor | None = None
        self.crop: Image.Image | None = None  # the face crop shown as "before"
        self.result: Image.Image | None = None  # the image shown as "after"
        self.result_request: Request | None = None
        self.saved: list[Path] = []
        self.messages: list[tuple[str, str]] = []  # (level, text), newest last
        self.runs_started = self.runs_finished = 0
        self._webcam_count = 0
        self._build_controls()
        self._layout()
        self._connect()
        self.refresh_models()
        self._show_crop_only("Pick a face and a method, then press Stylize.")

    # ------------------------------------------------------------------ controls and layout
    def _build_controls(self) -> None:
        slider = dict(continuous_update=False, style={"description_width": "90px"},
                      layout=widgets.Layout(width="340px"))
        faces = [(f"{s.name} (bundled)", s.name) for s in list_samples("face")]
        self.face = widgets.Dropdown(options=faces, value=faces[0][1], description="face", **_wide())
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="Upload a photo")
        self.webcam_button = widgets.Button(description="Webcam photo", icon="camera",
                                            disabled=self._webcam is None,
                                            tooltip="take a photo with your webcam (Google Colab)")
        self.webcam_output = widgets.Output()  # where the Colab camera preview appears
        self.webcam_note = widgets.HTML("" if self._webcam is not None else
                                        "<small>Webcam capture works on Google Colab only; "
                                        "here, upload a photo instead.</small>")
        self.crop_mode = widgets.ToggleButtons(options=CROP_MODES, value=CROP_MODES[0], description="crop",
                                               style={"description_width": "90px", "button_width": "110px"})
        self.crop_x = widgets.FloatSlider(0.5, min=0.0, max=1.0, step=0.01, description="box centre x", **slider)
        self.crop_y = widgets.FloatSlider(0.4, min=0.0, max=1.0, step=0.01, description="box centre y", **slider)
        self.crop_side = widgets.FloatSlider(0.5, min=0.05, max=1.0, step=0.01, description="box side", **slider)
        self.method = widgets.Dropdown(description="method", **_wide())
        self.refresh_button = widgets.Button(description="Find models", icon="refresh",
                                             tooltip=f"look again for *.pt model files in {self.models_dir}")
        self.model_info = widgets.HTML()
        styles = [s.name for s in list_samples("style")]
        self.style = widgets.Dropdown(options=styles, value="hubble_deep_field", description="style", **_wide())
        self.steps = widgets.IntSlider(runtime.by_mode(quick=4, full=30), min=1, max=200,
                                       description="step budget", **slider)
        self.strength = widgets.FloatSlider(1.0, min=0.0, max=1.0, step=0.05, description="strength", **slider)
        self.size = widgets.IntSlider(runtime.by_mode(quick=64, full=192), min=64, max=512, step=32,
                                      description="output size", **slider)
        self.keep_colour = widgets.Checkbox(False, description="keep the face's colours", indent=False)
        self.auto_update = widgets.Checkbox(True, description="update automatically (models)",
                                            indent=False)
        self.stylize_button = widgets.Button(description="Stylize", button_style="primary", icon="paint-brush")
        self.save_button = widgets.Button(description="Save result", icon="save", disabled=True)
        self.progress = widgets.FloatProgress(0.0, min=0.0, max=1.0, description="idle",
                                              layout=widgets.Layout(width="340px"))
        self.status = widgets.HTML()
        blank = png_bytes(Image.new("RGB", (DISPLAY_WIDTH, DISPLAY_WIDTH), (235, 235, 235)))
        self.before = widgets.Image(value=blank, format="png", width=DISPLAY_WIDTH, height=DISPLAY_WIDTH)
        self.after = widgets.Image(value=blank, format="png", width=DISPLAY_WIDTH, height=DISPLAY_WIDTH)
        self.before_label = widgets.HTML("<b>before</b>")
        self.after_label = widgets.HTML("<b>after</b>")

    def _layout(self) -> None:
        box = widgets.VBox
        self.manual_box = box([self.crop_x, self.crop_y, self.crop_side],
                              layout=widgets.Layout(display="none"))
        controls = box([
            widgets.HTML("<h3>Face style studio</h3>"),
            widgets.HTML("<b>1. Face</b>"), self.face, widgets.HBox([self.upload, self.webcam_button]),
            self.webcam_note, self.webcam_output, self.crop_mode, self.manual_box,
            widgets.HTML("<b>2. Method and style</b>"), widgets.HBox([self.method, self.refresh_button]),
            self.model_info, self.style, self.steps,
            widgets.HTML("<b>3. Look</b>"), self.strength, self.size, self.keep_colour, self.auto_update,
            widgets.HBox([self.stylize_button, self.save_button]), self.progress,
        ], layout=widgets.Layout(width="380px"))
        pictures = widgets.HBox([box([self.before_label, self.before]), box([self.after_label, self.after])])
        self.widget = box([widgets.HBox([controls, box([pictures, self.status])])])

    @contextlib.contextmanager
    def _muted(self):
        """Ignore control changes made by the app itself (e.g. refilling a dropdown)."""
        self._mute += 1
        try:
            yield
        finally:
            self._mute -= 1

    def _connect(self) -> None:
        self.upload.observe(self._on_upload, names="value")
        self.webcam_button.on_click(lambda _: self.capture_webcam())
        self.refresh_button.on_click(lambda _: self.refresh_models())
        self.stylize_button.on_click(lambda _: self.run())
        self.save_button.on_click(lambda _: self.save())
        self.method.observe(self._on_method, names="value")
        self.crop_mode.observe(self._on_crop_mode, names="value")
        for control in (self.face, self.crop_x, self.crop_y, self.crop_side, self.size, self.style, self.steps):
            control.observe(self._on_input_change, names="value")
        for control in (self.strength, self.keep_colour):
            control.observe(lambda _: self._render(), names="value")

    # ------------------------------------------------------------------ messages
    def _set_message(self, level: str, text: str) -> None:
        colours = {"info": "#333", "working": "#1565c0", "done": "#2e7d32", "error": "#c62828"}
        self.messages.append((level, text))
        self.status.value = (f"<div style='color:{colours[level]};max-width:520px'>"
                             f"{'⚠ ' if level == 'error' else ''}{html.escape(text)}</div>")

    @property
    def message(self) -> str:
        """The text of the latest status message."""
        return self.messages[-1][1] if self.messages else ""

    def _fail(self, err: BaseException) -> None:
        self._set_message("error", friendly_error(err))
        self.progress.bar_style, self.progress.description = "danger", "failed"

    # ------------------------------------------------------------------ sources: bundled, upload, webcam
    def add_photo(self, name: str, data: bytes | Image.Image, *, kind: str = UPLOAD_KEY) -> bool:
        """Add a photo (bytes or PIL) as a face source and select it; False (and a message) if unreadable."""
        try:
            photo = load_image(data, max_side=UPLOAD_MAX_SIDE, name=name)
        except (ImageLoadError, TypeError) as err:
            self._fail(err)
            return False
        key = f"{kind}{name}"
        self._photos[key] = photo
        self._faces_cache.pop(key, None)
        label = f"{name} ({'webcam' if kind == WEBCAM_KEY else 'uploaded'})"
        with self._muted():  # replacing a dropdown's options resets its value: no requests meanwhile
            self.face.options = [item for item in self.face.options if item[1] != key] + [(label, key)]
            self.face.value = key
        self._on_input_change(None)
        return True

    def _on_upload(self, change: dict) -> None:
        files = uploaded_files(change["new"])
        if not files:
            return
        name, data = files[-1]
        self.upload.value = type(change["new"])()  # let the same file be chosen again; free the bytes
        self.add_photo(name, data)

    def feed_upload(self, name: str, data: bytes) -> None:
        """Put a file into the upload control as the browser would (for tests and scripted demos)."""
        self.upload.value = ({"name": name, "type": "", "size": len(data), "content": memoryview(data),
                              "last_modified": datetime.datetime.now(datetime.timezone.utc)},)

    def capture_webcam(self) -> bool:
        """Take a webcam photo (Colab) and use it as the face; a message explains when that is unavailable."""
        if self._webcam is None:
            self._set_message("error", "Webcam capture is available on Google Colab only; upload a photo instead.")
            return False
        try:
            with self.webcam_output:
                data = self._webcam()
            self.webcam_output.clear_output()
        except Exception as err:  # no camera, permission refused, not on Colab...
            self._set_message("error", f"Could not take a webcam photo: {err}")
            return False
        self._webcam_count += 1
        return self.add_photo(f"photo {self._webcam_count}", data, kind=WEBCAM_KEY)

    def _photo(self, key: str) -> Image.Image:
        if key not in self._photos:
            self._photos[key] = load_sample(key)
        return self._photos[key]

    # ------------------------------------------------------------------ models
    def refresh_models(self) -> None:
        """Look again for model files in ``models_dir``; unreadable files are listed in the model note."""
        models, rejected = find_models(self.models_dir)
        self._models = {str(m.path): m for m in models}
        self._rejected = rejected
        options = [(m.label, str(m.path)) for m in models] + [("optimisation (Gatys)", OPTIMISATION)]
        previous = self.method.value
        with self._muted():
            self.method.options = options
            self.method.value = previous if previous in dict(options).values() else options[0][1]
        self._on_method(None)
        if previous is not None and self.method.value != previous:
            self._on_input_change(None)

    def _on_method(self, _change: dict | None) -> None:
        if _change is not None and self._mute:
            return
        choice = self._models.get(self.method.value)
        optimising = choice is None
        self.style.disabled = not (optimising or choice.kind in STYLE_INPUT_KINDS)
        self.steps.disabled = not optimising
        lines = [html.escape(choice.describe())] if choice else [
            "Optimisation (lesson 02): no training needed, but each image takes a few seconds per "
            "ten steps on a CPU. Pick any style."]
        if not self._models:
            lines.append(f"No model files in {html.escape(str(self.models_dir))}: train one in lesson 03.")
        lines += [f"<span style='color:#c62828'>{html.escape(note)}</span>" for note in self._rejected]
        self.model_info.value = "<small>" + "<br>".join(lines) + "</small>"
        if _change is not None:
            self._on_input_change(_change)

    def _runner(self, path: Path) -> tuple[str, Any]:
        """(kind, Stylizer or raw model) for a model file, cached; VGG19-based models share one VGG19."""
        if path not in self._runners:
            data = read_model_file(path)
            kind, config = data["kind"], data.get("config") or {}
            shared = kind in ("dcnn", "drn") and config.get("vgg_weights", "oxford") == "oxford"
            model = load_model(path, device=self.device, **({"vgg": self._shared_vgg()} if shared else {}))
            runner = model if kind in STYLE_INPUT_KINDS else Stylizer(model, device=self.device)
            self._runners[path] = (kind, runner)
        return self._runners[path]

    def _shared_vgg(self):
        return shared_vgg(str(self.device))

    # ------------------------------------------------------------------ requests
    def _on_crop_mode(self, change: dict) -> None:
        if self._mute:
            return
        self.manual_box.layout.display = "flex" if change["new"] == "manual box" else "none"
        self._on_input_change(change)

    def _on_input_change(self, _change: dict | None) -> None:
        """Something the result depends on changed: show the new crop, and restyle (debounced) for models."""
        if self._mute:
            return
        with self._lock:
            self._latest += 1  # whatever is running now is outdated
        self._raw = None
        if self.method.value != OPTIMISATION and self.auto_update.value:
            self._schedule()
        else:
            self._show_crop_only()

    def _schedule(self) -> None:
        """Debounce: run once, ``debounce_s`` after the last of a burst of changes."""
        if not self.background or self.debounce_s <= 0:
            self.run()
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(self.debounce_s, self.run)
        self._timer.daemon = True
        self._timer.start()

    def _request(self) -> Request:
        with self._lock:
            self._latest += 1
            number = self._latest
        return Request(number, self.face.value, self.crop_mode.value,
                       (self.crop_x.value, self.crop_y.value, self.crop_side.value), self.size.value,
                       self.method.value, self.style.value, self.steps.value)

    def _is_stale(self, request: Request) -> bool:
        return request.number != self._latest

    def run(self) -> None:
        """Stylize with the current settings (the Stylize button); in the background unless built otherwise."""
        if self._timer is not None:
            self._timer.cancel()  # a pending debounced request is covered by this one
        request = self._request()
        self.runs_started += 1
        self.progress.value, self.progress.bar_style, self.progress.description = 0.0, "info", "working"
        self._set_message("working", "Working...")
        if not self.background:
            self._work(request)
            return
        thread = threading.Thread(target=self._work, args=(request,), daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def wait(self, timeout: float = 300.0) -> None:
        """Block until pending and running requests are done (for scripts and tests)."""
        timer = self._timer
        if timer is not None:
            timer.join(timeout)
        for thread in list(self._threads):
            thread.join(timeout)

    def _work(self, request: Request) -> None:
        with self._compute:  # one heavy job at a time; a superseded one gives way quickly
            if self._is_stale(request):
                return
            try:
                before = self._crop(request)
                raw = self._stylize(request, before)
            except Superseded:
                return
            except Exception as err:  # every failure becomes a message, never a traceback
                if not self._is_stale(request):
                    self._fail(err)
                return
            with self._lock:
                if self._is_stale(request):
                    return  # a newer request came in meanwhile: never publish an outdated result
                self._before, self._raw, self._raw_request = image_to_tensor(before), raw.cpu(), request
                self.crop = before
                self.runs_finished += 1
                self._render()
                self.progress.value, self.progress.bar_style, self.progress.description = 1.0, "success", "done"
                self._set_message("done", self._describe(request))

    def _takes_style(self, request: Request) -> bool:
        choice = self._models.get(request.method)
        return request.method == OPTIMISATION or (choice is not None and choice.kind in STYLE_INPUT_KINDS)

    def _how(self, request: Request) -> str:
        if request.method == OPTIMISATION:
            return f"optimisation, {request.steps} steps, style {request.style}"
        style = f", style {request.style}" if self._takes_style(request) else ""
        return f"model {Path(request.method).name}{style}"

    def _describe(self, request: Request) -> str:
        return f"Done: {request.size}x{request.size} px, {self._how(request)}."

    def _crop(self, request: Request) -> Image.Image:
        photo = self._photo(request.source)
        if request.crop_mode == "manual box":
            cx, cy, side = request.box
            pixels = side * min(photo.size)
            box = (cx * photo.width - pixels / 2, cy * photo.height - pixels / 2, pixels, pixels)
            return align_face(photo, box, request.size, margin=0.0, level_eyes=False)
        if request.source not in self._faces_cache:
            self._faces_cache[request.source] = detect_faces(photo)
        found = self._faces_cache[request.source]
        if not found:
            name = request.source.split(":", 1)[-1]
            raise NoFaceError(f"No face found in {name}")
        return align_face(photo, found[0], request.size)

    def _stylize(self, request: Request, before: Image.Image) -> torch.Tensor:
        content = image_to_tensor(before, self.device)
        if request.method != OPTIMISATION:
            path = Path(request.method)
            if not path.is_file():
                raise CheckpointError(f"{path}: no such model file (was it moved or deleted?)")
            kind, runner = self._runner(path)
            if kind in STYLE_INPUT_KINDS:
                with torch.inference_mode():
                    return runner(content, self._style_tensor(request)).float().clamp(0, 1)
            return runner.stylize_tensor(content)
        return self._optimise(request, content)

    def _style_tensor(self, request: Request) -> torch.Tensor:
        """The bundled style image, shorter side ``request.size``, as a (1, 3, H, W) tensor on the device."""
        if request.style not in self._styles:
            self._styles[request.style] = load_sample(request.style, max_side=512)
        return image_to_tensor(resize_image(self._styles[request.style], request.size), self.device)

    def _optimise(self, request: Request, content: torch.Tensor) -> torch.Tensor:
        from .gatys import fast_settings, stylize_by_optimisation

        style = self._style_tensor(request)
        coarse = (2 * request.steps) // 3
        settings = fast_settings(self.device, coarse_steps=coarse, steps=request.steps - coarse)

        def on_step(step: int, _image: torch.Tensor, _loss: float) -> None:
            if self._is_stale(request):
                raise Superseded
            self.progress.value = (step + 1) / request.steps
            self.progress.description = f"step {step + 1}/{request.steps}"

        return stylize_by_optimisation(content, style, self._shared_vgg(), settings,
                                       callback=on_step, progress=False).image

    def _show_crop_only(self, note: str = "Settings changed: press Stylize to see the result.") -> None:
        """Show the new "before" crop at once (no stylizing); errors such as "no face" appear now."""
        request = self._request()
        try:
            before = self._crop(request)
        except Exception as err:
            self._fail(err)
            return
        with self._lock:
            if self._is_stale(request):
                return
            self.crop, self._before = before, image_to_tensor(before)
            self.before.value = png_bytes(before)
            self.progress.value, self.progress.bar_style, self.progress.description = 0.0, "", "idle"
            self._set_message("info", note)

    # ------------------------------------------------------------------ showing and saving
    def _render(self) -> None:
        """Apply strength and colour preservation to the last raw result and show before/after."""
        with self._lock:
            if self._raw is None or self._before is None:
                return
            raw = preserve_colour(self._raw, self._before) if self.keep_colour.value else self._raw
            self.result = tensor_to_image(blend(raw, self._before, self.strength.value))
            self.result_request = self._raw_request
            self.before.value = png_bytes(self.crop)
            self.after.value = png_bytes(self.result)
            self.save_button.disabled = False

    def save(self) -> Path | None:
        """Save the result under ``build/studio`` with a new numbered name (never overwriting); returns the path."""
        if self.result is None:
            self._set_message("error", "Nothing to save yet: press Stylize first.")
            return None
        folder = runtime.output_dir("studio")
        request = self.result_request
        stem = "studio" if request is None else "_".join([
            request.source.split(":", 1)[-1].rsplit(".", 1)[0].replace(" ", "-"),
            *([request.style] if self._takes_style(request) else []),
            *([] if request.method == OPTIMISATION else [Path(request.method).stem])])
        for _ in range(100):  # another process may take the same number between the check and the write
            path = next_free_path(folder, stem)
            try:
                save_image(self.result, path)
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - needs 100 races in a row
            self._set_message("error", f"Could not find a free file name in {folder}")
            return None
        self.saved.append(path)
        self._set_message("done", f"Saved to {path}")
        return path

    def figure(self, size: float = 3.5):
        """The current before/after as a matplotlib figure (for save_figure, or to look at headless)."""
        from .plotting import show_images

        if self.result is None or self.crop is None:
            raise ValueError("no result yet: press Stylize (or call app.run()) first")
        request = self.result_request
        title = "after" + (f": {self._how(request)}" if request else "")
        title += f"\n{self.result.width}x{self.result.height} px, strength {self.strength.value:.2f}"
        title += ", colours kept" if self.keep_colour.value else ""
        return show_images([self.crop, self.result], ["before", title], size=size)


def _wide() -> dict[str, Any]:
    return {"style": {"description_width": "90px"}, "layout": widgets.Layout(width="300px")}


def build_studio(models_dir: str | Path | None = None, device: torch.device | str | None = None, *,
                 background: bool | None = None, debounce_s: float = 0.4,
                 webcam: Callable[[], bytes] | None = None) -> StudioApp:
    """Build the studio app; display ``app.widget``.

    ``models_dir`` is searched for ``*.pt`` model files (default ``build/models``). By default the work
    runs in a worker thread; ``background=False`` runs every request in the calling thread (tests, and
    the default on Colab, which does not show widget updates made from other threads). ``webcam``
    replaces the Colab webcam capture (a function returning image bytes); by default it exists on Colab only.
    """
    return StudioApp(models_dir, device, background=background, debounce_s=debounce_s, webcam=webcam)
