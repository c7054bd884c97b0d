"""The interactive studio of lesson 06: an ipywidgets app to stylize a face, built by one function.

:func:`build_studio` returns a :class:`StudioApp`; its ``.widget`` is the widget tree to display and
every control is an attribute (``app.strength``, ``app.method``, ``app.save_button``...), so tests and
notebook cells drive the app exactly as a person would: set ``.value``, call ``.click()``.

The studio is three parts, and only this module imports ipywidgets:

- :mod:`facestyle_utils.studio`: the pipeline as plain functions (crop the face, stylize, blend), and
  :mod:`facestyle_utils.studio_io`: what it reads and writes (model files, uploads, the webcam, saved PNGs);
- :mod:`facestyle_utils.latest_wins`: "latest request wins", which keeps the app responsive: work runs
  in a worker thread, one job at a time; a newer request supersedes an older one (an optimisation that
  has been overtaken stops at its next step; a finished but outdated result is never shown); a short
  timer merges bursts of slider changes (sliders also report only on release);
- here: :class:`StudioControls` (the widgets and their layout) and :class:`StudioApp`, which connects
  them to the pipeline and the runner. Strength and colour preservation only re-blend the last raw
  result, so they update instantly.

Every failure (no face found, an unreadable upload, a missing or corrupt model file) becomes a short
message in the status line (:func:`~facestyle_utils.studio.friendly_error`); no traceback reaches the learner.
"""
from __future__ import annotations

import contextlib
import datetime
import html
import threading
from pathlib import Path
from typing import Any, Callable

import ipywidgets as widgets
import torch
from PIL import Image

from . import runtime
from .image_io import ImageLoadError, load_image
from .latest_wins import LatestWins
from .sample_data import list_samples
from .studio import (
    CROP_MODES,
    OPTIMISATION,
    STYLE_INPUT_KINDS,
    UPLOAD_MAX_SIDE,
    NoFaceError,
    Request,
    StudioPipeline,
    Stylized,
    friendly_error,
)
from .studio_io import ModelChoice, colab_webcam_photo, find_models, png_bytes, save_new, uploaded_files

__all__ = ["build_studio", "StudioApp", "StudioControls", "OPTIMISATION", "NoFaceError", "friendly_error"]

DISPLAY_WIDTH = 256  # pixels on screen for the before and after images
UPLOAD_KEY = "upload:"
WEBCAM_KEY = "webcam:"


def _wide() -> dict[str, Any]:
    return {"style": {"description_width": "90px"}, "layout": widgets.Layout(width="300px")}


class StudioControls:
    """Every control of the studio, laid out in ``self.widget``; no behaviour (that is :class:`StudioApp`)."""

    def __init__(self, models_dir: Path, webcam: bool) -> None:
        self.models_dir = models_dir
        slider = dict(continuous_update=False, style={"description_width": "90px"},
                      layout=widgets.Layout(width="340px"))
        faces = [(f"{s.name} (bundled)", s.name) for s in list_samples("face")]
        self.face = widgets.Dropdown(options=faces, value=faces[0][1], description="face", **_wide())
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="Upload a photo")
        self.webcam_button = widgets.Button(description="Webcam photo", icon="camera", disabled=not webcam,
                                            tooltip="take a photo with your webcam (Google Colab)")
        self.webcam_output = widgets.Output()  # where the Colab camera preview appears
        self.webcam_note = widgets.HTML("" if webcam else "<small>Webcam capture works on Google Colab only; "
                                        "here, upload a photo instead.</small>")
        self.crop_mode = widgets.ToggleButtons(options=CROP_MODES, value=CROP_MODES[0], description="crop",
                                               style={"description_width": "90px", "button_width": "110px"})
        self.crop_x = widgets.FloatSlider(0.5, min=0.0, max=1.0, step=0.01, description="box centre x", **slider)
        self.crop_y = widgets.FloatSlider(0.4, min=0.0, max=1.0, step=0.01, description="box centre y", **slider)
        self.crop_side = widgets.FloatSlider(0.5, min=0.05, max=1.0, step=0.01, description="box side", **slider)
        self.method = widgets.Dropdown(description="method", **_wide())
        self.refresh_button = widgets.Button(description="Find models", icon="refresh",
                                             tooltip=f"look again for *.pt model files in {models_dir}")
        self.model_info = widgets.HTML()
        styles = [s.name for s in list_samples("style")]
        self.style = widgets.Dropdown(options=styles, value="hubble_deep_field", description="style", **_wide())
        self.steps = widgets.IntSlider(runtime.by_mode(quick=4, workshop=15, full=30), min=1, max=200,
                                       description="step budget", **slider)
        self.strength = widgets.FloatSlider(1.0, min=0.0, max=1.0, step=0.05, description="strength", **slider)
        self.size = widgets.IntSlider(runtime.by_mode(quick=64, workshop=128, full=192), min=64, max=512, step=32,
                                      description="output size", **slider)
        self.preserve_colour = widgets.Checkbox(False, description="keep the face's colours", indent=False)
        self.auto_update = widgets.Checkbox(True, description="update automatically (models)", indent=False)
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

        box = widgets.VBox
        self.manual_box = box([self.crop_x, self.crop_y, self.crop_side], layout=widgets.Layout(display="none"))
        controls = box([
            widgets.HTML("<h3>Face style studio</h3>"),
            widgets.HTML("<b>1. Face</b>"), self.face, widgets.HBox([self.upload, self.webcam_button]),
            self.webcam_note, self.webcam_output, self.crop_mode, self.manual_box,
            widgets.HTML("<b>2. Method and style</b>"), widgets.HBox([self.method, self.refresh_button]),
            self.model_info, self.style, self.steps,
            widgets.HTML("<b>3. Look</b>"), self.strength, self.size, self.preserve_colour, self.auto_update,
            widgets.HBox([self.stylize_button, self.save_button]), self.progress,
        ], layout=widgets.Layout(width="380px"))
        pictures = widgets.HBox([box([self.before_label, self.before]), box([self.after_label, self.after])])
        self.widget = box([widgets.HBox([controls, box([pictures, self.status])])])
        self.crop_mode.observe(self._show_box_sliders, names="value")

        self.messages: list[tuple[str, str]] = []  # (level, text) of each status message, newest last
        self._mute = 0

    def _show_box_sliders(self, change: dict) -> None:
        self.manual_box.layout.display = "flex" if change["new"] == "manual box" else "none"

    @contextlib.contextmanager
    def _muted(self):
        """Ignore control changes made by the app itself (e.g. refilling a dropdown)."""
        self._mute += 1
        try:
            yield
        finally:
            self._mute -= 1

    def offer_photo(self, label: str, key: str) -> None:
        """Add (or replace) ``key`` in the face dropdown and select it, without raising change events."""
        with self._muted():  # replacing a dropdown's options resets its value
            self.face.options = [item for item in self.face.options if item[1] != key] + [(label, key)]
            self.face.value = key

    def offer_methods(self, options: list[tuple[str, str]]) -> None:
        """Refill the method dropdown with (label, value) pairs; its value stays if still offered."""
        previous = self.method.value
        with self._muted():
            self.method.options = options
            self.method.value = previous if previous in dict(options).values() else options[0][1]

    def show_method(self, choice: ModelChoice | None, offered: int, rejected: list[str]) -> None:
        """Reflect the chosen method: style and step budget enabled where they matter, and the model note."""
        self.style.disabled = not (choice is None or choice.kind in STYLE_INPUT_KINDS)
        self.steps.disabled = choice is not None
        self.model_info.value = model_note(choice, self.models_dir, offered, rejected)

    def take_webcam_photo(self, webcam: Callable[[], bytes]) -> bytes:
        """Call ``webcam()`` with its output (the Colab camera preview) in the app; raises what it raises."""
        with self.webcam_output:
            data = webcam()
        self.webcam_output.clear_output()
        return data

    def show_pictures(self, before: Image.Image, after: Image.Image | None = None) -> None:
        """Show the before (and after) images; a shown result can be saved."""
        self.before.value = png_bytes(before)
        if after is not None:
            self.after.value, self.save_button.disabled = png_bytes(after), False

    def show_progress(self, value: float, style: str, text: str) -> None:
        """Set the progress bar: ``value`` in [0, 1], bar style ("", "info", "success", "danger"), label."""
        self.progress.value, self.progress.bar_style, self.progress.description = value, style, text

    def show_message(self, level: str, text: str) -> None:
        """Show ``text`` in the status line; ``level`` is "info", "working", "done" or "error" (its colour)."""
        colours = {"info": "#333", "working": "#1565c0", "done": "#2e7d32", "error": "#c62828"}
        self.messages.append((level, text))
        self.status.value = (f"<div style='color:{colours[level]};max-width:520px'>"
                             f"{'⚠ ' if level == 'error' else ''}{html.escape(text)}</div>")

    @property
    def message(self) -> str:
        """The text of the latest status message."""
        return self.messages[-1][1] if self.messages else ""

    def feed_upload(self, name: str, data: bytes) -> None:
        """Put a file into the upload control as the browser would (for tests and scripted demos)."""
        self.upload.value = ({"name": name, "type": "", "size": len(data), "content": memoryview(data),
                              "last_modified": datetime.datetime.now(datetime.timezone.utc)},)


def model_note(choice: ModelChoice | None, models_dir: Path, offered: int, rejected: list[str]) -> str:
    """The HTML note under the method dropdown: the chosen model's header (or what optimisation is), a hint
    when ``models_dir`` offers no model (``offered`` is how many it does), and why each ``rejected`` file was."""
    lines = [html.escape(choice.describe())] if choice else [
        "Optimisation (lesson 02): no training needed, but each image takes a few seconds per "
        "ten steps on a CPU. Pick any style."]
    if not offered:
        lines.append(f"No model files in {html.escape(str(models_dir))}: train one in lesson 03.")
    lines += [f"<span style='color:#c62828'>{html.escape(note)}</span>" for note in rejected]
    return "<small>" + "<br>".join(lines) + "</small>"


class StudioApp(StudioControls):
    """The studio: its controls wired to the pipeline (:mod:`~facestyle_utils.studio`) and the runner
    (:class:`~facestyle_utils.latest_wins.LatestWins`). Build it with :func:`build_studio`; display ``app.widget``.

    After a run: ``crop`` and ``result`` (PIL images shown as before/after), ``result_request`` (the
    :class:`~facestyle_utils.studio.Request` behind it), ``message`` (the status text), ``saved`` (paths),
    ``runs_started``/``runs_finished`` (requests started and results shown).
    """

    def __init__(self, models_dir: str | Path | None = None, device: torch.device | str | None = None, *,
                 background: bool | None = None, debounce_s: float = 0.4,
                 webcam: Callable[[], bytes] | None = None) -> None:
        self.device = runtime.pick_device(device)
        models_dir = Path(models_dir) if models_dir is not None else runtime.output_dir("models")
        # Colab does not show widget changes made from another thread (googlecolab/colabtools#3373),
        # so there the work runs in the callback itself.
        background = (not runtime.in_colab()) if background is None else background
        self.jobs = LatestWins(background=background, debounce_s=debounce_s)
        self._webcam = webcam if webcam is not None else (colab_webcam_photo if runtime.in_colab() else None)
        super().__init__(models_dir, webcam=self._webcam is not None)
        self.pipeline = StudioPipeline(self.device)
        self._models: dict[str, ModelChoice] = {}
        self._rejected: list[str] = []
        self._lock = threading.RLock()  # guards what is shown, between the worker and instant re-blends
        self._last: Stylized | None = None  # the newest finished request, re-blended by strength and colour
        self.crop = self.result = self.result_request = None
        self.saved: list[Path] = []
        self.runs_started = self.runs_finished = self._webcam_count = 0
        self.upload.observe(self._on_upload, names="value")
        self.webcam_button.on_click(lambda _: self.capture_webcam())
        self.refresh_button.on_click(lambda _: self.refresh_models())
        self.stylize_button.on_click(lambda _: self.run())
        self.save_button.on_click(lambda _: self.save())
        self.method.observe(self._on_method, names="value")
        for control in (self.face, self.crop_mode, self.crop_x, self.crop_y, self.crop_side, self.size,
                        self.style, self.steps):
            control.observe(self._on_input_change, names="value")
        for control in (self.strength, self.preserve_colour):
            control.observe(lambda _: self._render(), names="value")
        self.refresh_models()
        self._show_crop_only("Pick a face and a method, then press Stylize.")

    def _fail(self, err: BaseException) -> None:
        self.show_message("error", friendly_error(err))
        self.show_progress(self.progress.value, "danger", "failed")

    # ------------------------------------------------------------------ sources: bundled, upload, webcam
    def add_photo(self, name: str, data: bytes | Image.Image, *, kind: str = UPLOAD_KEY) -> bool:
        """Add a photo (bytes or PIL) as a face source and select it; False (and a message) if unreadable."""
        try:
            photo = load_image(data, max_side=UPLOAD_MAX_SIDE, name=name)
        except (ImageLoadError, TypeError) as err:
            self._fail(err)
            return False
        key = f"{kind}{name}"
        self.pipeline.add_photo(key, photo)
        self.offer_photo(f"{name} ({'webcam' if kind == WEBCAM_KEY else 'uploaded'})", key)
        self._on_input_change(None)
        return True

    def _on_upload(self, change: dict) -> None:
        files = uploaded_files(change["new"])
        if files:
            self.upload.value = type(change["new"])()  # let the same file be chosen again; free the bytes
            self.add_photo(*files[-1])

    def capture_webcam(self) -> bool:
        """Take a webcam photo (Colab) and use it as the face; a message explains when that is unavailable."""
        if self._webcam is None:
            self.show_message("error", "Webcam capture is available on Google Colab only; upload a photo instead.")
            return False
        try:
            data = self.take_webcam_photo(self._webcam)
        except Exception as err:  # no camera, permission refused, not on Colab...
            self.show_message("error", f"Could not take a webcam photo: {err}")
            return False
        self._webcam_count += 1
        return self.add_photo(f"photo {self._webcam_count}", data, kind=WEBCAM_KEY)

    # ------------------------------------------------------------------ models
    def refresh_models(self) -> None:
        """Look again for this mode's model files in ``models_dir``; unreadable ones are named in the model note."""
        models, self._rejected = find_models(self.models_dir)
        self._models = {str(m.path): m for m in models}
        previous = self.method.value
        self.offer_methods([(m.label, str(m.path)) for m in models] + [("optimisation (Gatys)", OPTIMISATION)])
        self._on_method(None)
        if previous is not None and self.method.value != previous:
            self._on_input_change(None)

    def _on_method(self, change: dict | None) -> None:
        if change is not None and self._mute:
            return
        self.show_method(self._models.get(self.method.value), len(self._models), self._rejected)
        if change is not None:
            self._on_input_change(change)

    # ------------------------------------------------------------------ requests
    def _on_input_change(self, _change: dict | None) -> None:
        """Something the result depends on changed: show the new crop, and restyle (debounced) for models."""
        if self._mute:
            return
        self.jobs.newer()  # whatever is running now is outdated
        self._last = None
        if self.method.value != OPTIMISATION and self.auto_update.value:
            self.jobs.debounce(self.run)
        else:
            self._show_crop_only()

    def _request(self) -> Request:
        choice = self._models.get(self.method.value)
        return Request(self.face.value, self.crop_mode.value, (self.crop_x.value, self.crop_y.value,
                       self.crop_side.value), self.size.value, self.method.value, self.style.value,
                       self.steps.value, choice.kind if choice else None)

    def run(self) -> None:
        """Stylize with the current settings (the Stylize button); in the background unless built otherwise."""
        request = self._request()
        self.runs_started += 1
        self.show_progress(0.0, "info", "working")
        self.show_message("working", "Working...")
        self.jobs.submit(lambda ticket: self._compute(request, ticket), self._publish, self._fail)

    def wait(self, timeout: float = 300.0) -> None:
        """Block until pending and running requests are done (for scripts and tests)."""
        self.jobs.wait(timeout)

    def _compute(self, request: Request, ticket: int) -> Stylized:
        """The pipeline for one request, in the worker; an optimisation reports each step."""

        def on_step(step: int) -> None:
            self.jobs.check(ticket)  # overtaken: stop now
            self.progress.value = (step + 1) / request.steps
            self.progress.description = f"step {step + 1}/{request.steps}"

        return self.pipeline.run(request, on_step)

    def _publish(self, done: Stylized) -> None:
        with self._lock:
            self._last, self.crop = done, done.crop
            self.runs_finished += 1
            self._render()
        self.show_progress(1.0, "success", "done")
        self.show_message("done", done.request.describe())

    def _show_crop_only(self, note: str = "Settings changed: press Stylize to see the result.") -> None:
        """Show the new "before" crop at once (no stylizing); errors such as "no face" appear now."""
        ticket = self.jobs.newer()
        try:
            before = self.pipeline.crop(self._request())
        except Exception as err:
            self._fail(err)
            return

        def show() -> None:
            with self._lock:
                self.crop = before
                self.show_pictures(before)
            self.show_progress(0.0, "", "idle")
            self.show_message("info", note)

        self.jobs.publish(ticket, show)

    # ------------------------------------------------------------------ showing and saving
    def _render(self) -> None:
        """Apply strength and colour preservation to the last raw result and show before/after."""
        with self._lock:
            if self._last is not None:
                self.result = self._last.blend(self.strength.value, self.preserve_colour.value)
                self.result_request = self._last.request
                self.show_pictures(self._last.crop, self.result)

    def save(self) -> Path | None:
        """Save the result under ``build/studio`` with a new numbered name (never overwriting); its path."""
        if self.result is None:
            self.show_message("error", "Nothing to save yet: press Stylize first.")
            return None
        stem = "studio" if self.result_request is None else self.result_request.file_stem()
        try:
            path = save_new(self.result, runtime.output_dir("studio"), stem)
        except FileExistsError as err:  # pragma: no cover - needs 100 races in a row
            self.show_message("error", str(err))
            return None
        self.saved.append(path)
        self.show_message("done", f"Saved to {path}")
        return path

    def figure(self, size: float = 3.5):
        """The current before/after as a matplotlib figure (for save_figure, or to look at headless)."""
        from .plotting import show_images

        if self.result is None or self.crop is None:
            raise ValueError("no result yet: press Stylize (or call app.run()) first")
        title = "after" + (f": {self.result_request.how()}" if self.result_request else "")
        title += f"\n{self.result.width}x{self.result.height} px, strength {self.strength.value:.2f}"
        title += ", colours kept" if self.preserve_colour.value else ""
        return show_images([self.crop, self.result], ["before", title], size=size)


def build_studio(models_dir: str | Path | None = None, device: torch.device | str | None = None, *,
                 background: bool | None = None, debounce_s: float = 0.4,
                 webcam: Callable[[], bytes] | None = None) -> StudioApp:
    """Build the studio app; display ``app.widget``. The one entry point for lesson 06.

    ``models_dir`` is searched for ``*.pt`` model files of the current mode (default: this mode's
    ``models`` folder, :func:`~facestyle_utils.runtime.output_dir`: ``build/models`` in full mode, so the
    studio never offers a quick or workshop model in full mode). By default the work runs in
    a worker thread; ``background=False`` runs every request in the calling thread (tests, and the
    default on Colab, which does not show widget updates made from other threads). ``debounce_s`` is the
    pause after a burst of changes before a model restyles (0: at once). ``webcam`` replaces the Colab
    webcam capture (a function returning image bytes); by default it exists on Colab only.
    Raises RuntimeError when ``device`` is not available here.
    """
    return StudioApp(models_dir, device, background=background, debounce_s=debounce_s, webcam=webcam)
