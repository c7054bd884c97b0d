"""The studio in a real browser: lesson 06 run in JupyterLab in headless Chromium, with a screenshot.

``make browser-test`` (or ``python tools/browser_test.py``) does what a learner does:

1. starts JupyterLab on a free localhost port with a random token, serving a copy of
   ``notebooks/06_interactive_studio.ipynb`` in ``build/browser/`` (``build/quick/browser/`` and
   ``build/workshop/browser/`` in those modes; the copy sits inside the repository, so the kernel finds
   the models of its mode as usual);
2. opens it in headless Chromium driven by Selenium, and runs it with the Run menu's "Run All Cells";
3. waits for the studio to render as live widgets (a ``VBox(children=...)`` text instead means the
   browser has no ipywidgets front end), chooses a face and the first trained model in the app's
   dropdowns by their visible labels (the optimisation method when there is no model of this mode),
   presses Stylize and waits for the result: a "Done" status line and an "after" picture that differs
   from the face (:data:`MIN_DIFFERENCE`);
4. saves a screenshot of the page, scrolled to the app: ``06_studio.png`` in that folder
   (``06_studio_failed.png`` and the message when a step fails; the server's log is ``jupyter-server.log``).

Full mode by default, as ``make lab`` (lesson 06 takes about a minute on a CPU, and full-mode models
show a visible style; quick-mode models barely change the face); ``--quick`` or ``FACESTYLE_QUICK=1``
runs it in quick mode, ``FACESTYLE_WORKSHOP=1`` in workshop mode.
Exit status 0 when the check passes, or when it is skipped because no Chromium,
chromedriver or selenium is installed (the message says what to install); 1 when it fails. Needs the
standard library, the course and selenium (``pip install -e ".[browser]"``); Chromium and chromedriver
come from the system (Debian: ``apt-get install chromium chromium-driver``).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import course  # tools/course.py: the option for encrypted kernel traffic, as `make lab` uses it

from facestyle_utils import runtime

try:  # without selenium the check is skipped with a message saying how to install it
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:
    webdriver = None

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "06_interactive_studio.ipynb"
SCREENSHOT = "06_studio.png"
FAILED_SCREENSHOT = "06_studio_failed.png"
#: Program names tried on PATH, in order: the Debian package's names first.
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
DRIVER_NAMES = ("chromedriver", "chromium.chromedriver")  # the second: Ubuntu's chromium snap
#: What to install, as printed when something is missing.
INSTALL_BROWSER = "sudo apt-get install -y chromium chromium-driver"
INSTALL_SELENIUM = '.venv/bin/python -m pip install -c constraints.txt -e ".[browser]"'
#: JupyterLab settings for the check (a private settings folder, so a user's own settings do not matter):
#: every cell attached to the page (the default windowing leaves cells out of view out of the DOM), the
#: notebook's kernel started without the "Select Kernel" dialog, no autosave, no news or update toasts.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none",
                                                                   "autoStartDefaultKernel": True},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}
#: What the check picks in the studio, by the labels a person sees.
FACE = "astronaut (bundled)"
OPTIMISATION_LABEL = "optimisation (Gatys)"
#: The text a notebook shows for a widget when the browser cannot render widgets.
STATIC_WIDGET = "VBox(children="


class CheckFailed(Exception):
    """A step of the browser check failed; the message says which and what was seen."""


@dataclass
class Config:
    """One run of the check: the programs, the mode, the time allowed for Run All, the output folder."""

    browser: str
    driver: str
    mode: str = "full"
    timeout_s: float = 900.0
    out_dir: Path = ROOT / "build" / "browser"


def output_folder(mode: str) -> Path:
    """``build/browser`` in full mode, ``build/<mode>/browser`` in the others (:func:`runtime.output_dir`'s
    rule, always inside the repository so the served notebook's kernel finds the course)."""
    return ROOT / "build" / runtime.mode_folder(mode) / "browser"


def find_program(names: tuple[str, ...], given: str | None = None) -> str | None:
    """The path of ``given`` (a path or a name on PATH) or of the first of ``names`` on PATH; None if none."""
    for name in ([given] if given else names):
        found = shutil.which(name)
        if found:
            return found
    return None


def selenium_installed() -> bool:
    return webdriver is not None


def missing_requirements(browser: str | None, driver: str | None, selenium: bool) -> list[str]:
    """The names of what the check lacks: Chromium, chromedriver, selenium (empty when all are there)."""
    return [name for name, ok in (("Chromium (or Chrome)", browser), ("chromedriver", driver),
                                  ("the selenium package", selenium)) if not ok]


def skip_message(missing: list[str]) -> str:
    """Why the check is skipped and the commands that install what is missing."""
    return (f"browser test skipped: {', '.join(missing)} not found. To run it, install them:\n"
            f"  {INSTALL_BROWSER}\n  {INSTALL_SELENIUM}\n"
            "(the first on Debian or Ubuntu; elsewhere install Chrome or Chromium and its chromedriver,\n"
            "on PATH or named with --browser PATH --driver PATH; on Windows the second starts with\n"
            ".venv\\Scripts\\python.exe), then run `make browser-test` (or `python tools/browser_test.py`) again.")


def static_widget_problem(output_text: str) -> str | None:
    """A message when a notebook output shows a widget as text (no widget front end), else None."""
    if STATIC_WIDGET not in output_text:
        return None
    return ("the studio did not render: the app cell shows "
            f"{output_text.strip()[:60]!r}... as text instead of live widgets, so JupyterLab has no "
            "ipywidgets front end (check that jupyterlab_widgets is installed and enabled in the environment "
            "running the server: `jupyter labextension list` names @jupyter-widgets/jupyterlab-manager)")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_command(python: str, port: int, token: str, root_dir: Path, settings_dir: Path) -> list[str]:
    """The JupyterLab command: ``root_dir`` served on 127.0.0.1:``port`` behind ``token``, no browser of its
    own, user settings and workspaces in ``settings_dir``, no news or update check (the check runs offline)."""
    command = [python, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root_dir}", "--ServerApp.allow_root=True",  # containers, CI
               f"--LabApp.user_settings_dir={settings_dir / 'user-settings'}",
               f"--LabApp.workspaces_dir={settings_dir / 'workspaces'}",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    return command + ([course.LAB_ENCRYPTION] if curve_available() else [])


def curve_available() -> bool:
    """True when this Python's pyzmq can encrypt kernel traffic with CurveZMQ."""
    try:
        import zmq
    except ImportError:
        return False
    return bool(zmq.has("curve"))


def write_lab_settings(settings_dir: Path) -> None:
    """Write :data:`LAB_SETTINGS` into ``settings_dir/user-settings``."""
    for name, values in LAB_SETTINGS.items():
        path = settings_dir / "user-settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


@contextlib.contextmanager
def jupyterlab(config: Config, token: str):
    """Run JupyterLab for the check; yields its base URL; stops it (and its kernels) afterwards.
    Raises CheckFailed when it does not answer within a minute (its log is named)."""
    port, log_path = free_port(), config.out_dir / "jupyter-server.log"
    env = {**os.environ, runtime.QUICK_ENV: "1" if config.mode == "quick" else "0",
           runtime.WORKSHOP_ENV: "1" if config.mode == "workshop" else "0"}
    with tempfile.TemporaryDirectory(prefix="facestyle-lab-") as settings, open(log_path, "w") as log:
        write_lab_settings(Path(settings))
        command = server_command(sys.executable, port, token, config.out_dir, Path(settings))
        server = subprocess.Popen(command, cwd=config.out_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_server(f"{url}/api/status?token={token}", server, log_path)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()


def wait_for_server(status_url: str, server: subprocess.Popen, log_path: Path, timeout_s: float = 60.0) -> None:
    """Poll ``status_url`` until the server answers; CheckFailed if it exits or stays silent."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CheckFailed(f"JupyterLab exited with status {server.returncode}; see {log_path}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(status_url, timeout=5):
                return
        time.sleep(0.5)
    raise CheckFailed(f"JupyterLab did not answer within {timeout_s:.0f} s; see {log_path}")


#: JavaScript: the after image's pixel spread and its mean difference from the before image (0-255 scale),
#: so a grey placeholder or an unchanged face does not count as a stylized result.
IMAGE_STATS_JS = """
const pixels = (img) => {
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const context = canvas.getContext('2d');
  context.drawImage(img, 0, 0);
  return context.getImageData(0, 0, canvas.width, canvas.height).data;
};
const [before, after] = [pixels(arguments[0]), pixels(arguments[1])];
let sum = 0, squares = 0, difference = 0;
for (let i = 0; i < after.length; i++) {
  if (i % 4 === 3) continue;
  sum += after[i]; squares += after[i] * after[i];
  difference += Math.abs(after[i] - (before.length === after.length ? before[i] : 0));
}
const n = after.length * 3 / 4;
return {spread: Math.sqrt(Math.max(squares / n - (sum / n) ** 2, 0)), difference: difference / n,
        width: arguments[1].naturalWidth};
"""
#: The least pixel spread and difference from the face (0-255) that count as a stylized picture.
MIN_SPREAD, MIN_DIFFERENCE = 5.0, 2.0


class StudioPage:
    """Lesson 06 open in JupyterLab in a Selenium-driven Chromium: each method is one step a person takes,
    found by visible labels; each raises CheckFailed saying what was expected and what the page showed."""

    def __init__(self, driver) -> None:
        self.driver = driver
        self.app = None  # the studio's output area, once rendered

    @classmethod
    @contextlib.contextmanager
    def open(cls, browser: str, driver: str, window: tuple[int, int] = (1400, 1100)):
        """Headless Chromium at ``browser`` driven through ``driver``; closed afterwards."""
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        # --no-sandbox: Chromium refuses to start as root (containers, CI) with its sandbox on; the page is local.
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         f"--window-size={window[0]},{window[1]}"):
            options.add_argument(argument)
        try:
            chrome = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
        except WebDriverException as err:
            raise CheckFailed(f"could not start {browser} through {driver}: {err.msg}") from err
        try:
            yield cls(chrome)
        finally:
            chrome.quit()

    def wait(self, timeout_s: float, condition, failure: str | Callable[[], str]):
        """Poll ``condition(driver)`` until it is truthy (its value) or ``timeout_s`` passes: then CheckFailed
        with ``failure`` (a function is called then, to describe the page as it is at that moment)."""
        try:
            return WebDriverWait(self.driver, timeout_s, poll_frequency=0.5).until(condition)
        except TimeoutException:
            raise CheckFailed(f"{failure() if callable(failure) else failure} (waited {timeout_s:.0f} s)") from None

    def texts(self, css: str, within=None) -> list[str]:
        return [e.text for e in (within or self.driver).find_elements(By.CSS_SELECTOR, css)]

    def load(self, url: str) -> None:
        """Open the notebook and wait for its kernel to be idle."""
        self.driver.get(url)
        idle = ".jp-Notebook-ExecutionIndicator[data-status=idle]"
        self.wait(120, lambda d: d.find_elements(By.CSS_SELECTOR, idle) and not self.texts(".jp-Dialog"),
                  lambda: "the notebook did not open with an idle kernel; dialogs on the page: "
                  f"{self.texts('.jp-Dialog') or 'none'}")

    def run_all(self, timeout_s: float, tries: int = 4) -> None:
        """Run > Run All Cells, then wait until every code cell has run; a cell's error output is reported.
        When the run stops early with no error output (the kernel's connection dropped at startup, as the
        server's log showed once), all cells are run once more before the check fails."""
        prompts = ".jp-CodeCell .jp-InputPrompt"
        for attempt in range(2):
            self.start_run_all(prompts, tries)
            self.wait(timeout_s, lambda d: not any("*" in t for t in self.texts(prompts)),
                      "Run All Cells did not finish")
            not_run = [i for i, text in enumerate(self.texts(prompts)) if not re.search(r"\d", text)]
            errors = self.texts(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            if not not_run:
                return
            if errors or attempt:
                raise CheckFailed(f"Run All Cells stopped: code cells {not_run} did not run; last error output: "
                                  f"{(errors or ['none'])[-1][-600:]}")
            print(f"Run All Cells stopped before code cells {not_run} with no error output: running all again",
                  flush=True)

    def start_run_all(self, prompts: str, tries: int) -> None:
        """Click Run > Run All Cells until a cell starts; clicked again (``tries`` times in all) when none starts
        within 10 s: a click while the new kernel is still connecting runs nothing, although the page shows it idle."""
        for _ in range(tries):
            self.click_menu("Run", "Run All Cells")
            with contextlib.suppress(CheckFailed):
                self.wait(10, lambda d: any(re.search(r"[*\d]", t) for t in self.texts(prompts)), "")
                return
            print("Run All Cells started no cell within 10 s (the kernel was still connecting?): clicking again",
                  flush=True)
        raise CheckFailed(f"Run All Cells started no cell ({tries} clicks, 10 s apart)")

    def click_menu(self, menu: str, item: str) -> None:
        self.driver.find_element(By.XPATH, f"//li[contains(@class,'lm-MenuBar-item')][normalize-space()='{menu}']"
                                 ).click()
        self.wait(10, lambda d: d.find_element(
            By.XPATH, f"//li[contains(@class,'lm-Menu-item')][.//div[normalize-space()='{item}']]"),
            f"no '{item}' in the {menu} menu").click()

    def wait_for_studio(self) -> None:
        """Wait for the app's title in a notebook output; a widget shown as text fails at once, with the reason."""
        def rendered(driver):
            for output in driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output"):
                problem = static_widget_problem(output.text)
                if problem:
                    self.app = output  # the screenshot shows it
                    raise CheckFailed(problem)
            titles = driver.find_elements(By.XPATH, "//h3[normalize-space()='Face style studio']")
            return titles and titles[0].find_element(By.XPATH, "ancestor::div[contains(@class,'jp-OutputArea')][1]")

        self.app = self.wait(60, rendered, "the studio did not render: no 'Face style studio' widget in the "
                             "notebook's outputs")

    def stylize(self, face: str, optimisation: str) -> str:
        """Choose ``face`` and the first trained model (else ``optimisation``), press Stylize, wait for the result."""
        methods = [o.text for o in Select(self.control("method")).options]
        model = next((m for m in methods if m != optimisation), optimisation)
        after = self.picture("after")
        previous = after.get_attribute("src")
        self.choose("face", face)
        self.choose("method", model)
        self.button("Stylize").click()
        self.wait(300, lambda d: self.status().startswith(("Done:", "⚠")) and
                  self.picture("after").get_attribute("src") != previous,
                  lambda: f"no result appeared after choosing {face!r} and {model!r}; status: {self.status()!r}")
        if not self.status().startswith("Done:"):
            raise CheckFailed(f"the studio reported an error: {self.status()}")
        stats = self.driver.execute_script(IMAGE_STATS_JS, self.picture("before"), self.picture("after"))
        if stats["spread"] < MIN_SPREAD or stats["difference"] < MIN_DIFFERENCE:
            raise CheckFailed(f"the 'after' picture does not look stylized: pixel spread {stats['spread']:.1f}, "
                              f"mean difference from the face {stats['difference']:.1f} (0-255)")
        note = "" if model != optimisation else " (no trained model of this mode in build/models)"
        return (f"face {face!r}, method {model!r}{note}: {self.status()!r}; the 'after' picture differs from the "
                f"face by {stats['difference']:.1f} on average (0-255), pixel spread {stats['spread']:.1f}")

    def control(self, label: str):
        return self.app.find_element(By.XPATH, f".//div[contains(@class,'widget-dropdown')]"
                                     f"[label[normalize-space()='{label}']]/select")

    def choose(self, label: str, option: str) -> None:
        """Pick ``option`` (its visible text) in the dropdown labelled ``label``."""
        Select(self.control(label)).select_by_visible_text(option)

    def button(self, label: str):
        return self.app.find_element(By.XPATH, f".//button[normalize-space()='{label}']")

    def picture(self, label: str):
        return self.app.find_element(By.XPATH, f".//div[contains(@class,'widget-vbox')]"
                                     f"[div//b[normalize-space()='{label}']]/img")

    def status(self) -> str:
        """The studio's status line (the message under the pictures)."""
        found = self.app.find_elements(By.XPATH, ".//div[contains(@class,'widget-hbox')][.//b[normalize-space()="
                                       "'after']]/following-sibling::div[contains(@class,'widget-html')]")
        return found[0].text.strip() if found else ""

    def screenshot(self, path: Path) -> None:
        """Save the window as PNG at ``path``, scrolled to the studio when it rendered."""
        if self.app is not None:
            self.driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", self.app)
            time.sleep(0.5)
        self.driver.save_screenshot(str(path))


def run_check(config: Config) -> str:
    """The whole check (see the module docstring); returns what was chosen, raises CheckFailed."""
    config.out_dir.mkdir(parents=True, exist_ok=True)
    for old in (SCREENSHOT, FAILED_SCREENSHOT):  # a screenshot left from an earlier run would mislead
        (config.out_dir / old).unlink(missing_ok=True)
    shutil.copy2(NOTEBOOK, config.out_dir / NOTEBOOK.name)
    token = secrets.token_hex(24)
    with jupyterlab(config, token) as url, StudioPage.open(config.browser, config.driver) as page:
        try:
            page.load(f"{url}/lab/tree/{NOTEBOOK.name}?token={token}")
            page.run_all(config.timeout_s)
            page.wait_for_studio()
            chosen = page.stylize(FACE, OPTIMISATION_LABEL)
            page.screenshot(config.out_dir / SCREENSHOT)
        except CheckFailed:
            page.screenshot(config.out_dir / FAILED_SCREENSHOT)
            raise
    return chosen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tools/browser_test.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="run lesson 06 in quick mode (default: the mode the environment selects, "
                             "full unless FACESTYLE_QUICK=1 or FACESTYLE_WORKSHOP=1)")
    parser.add_argument("--browser", help="the Chromium or Chrome program (default: the first of "
                        f"{', '.join(BROWSER_NAMES)} on PATH)")
    parser.add_argument("--driver", help="the chromedriver program (default: chromedriver on PATH)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds allowed for Run All (default 900)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    browser = find_program(BROWSER_NAMES, options.browser)
    driver = find_program(DRIVER_NAMES, options.driver)
    missing = missing_requirements(browser, driver, selenium_installed())
    if missing:
        print(skip_message(missing))
        return 0
    mode = "quick" if options.quick else runtime.course_mode()
    config = Config(browser, driver, mode, options.timeout or 900.0, output_folder(mode))
    print(f"browser test: lesson 06 in {mode} mode in {browser} (screenshots and "
          f"the server log in {config.out_dir.relative_to(ROOT)})", flush=True)
    started = time.monotonic()
    try:
        chosen = run_check(config)
    except CheckFailed as err:
        print(f"browser test FAILED: {err}\n(screenshot: {config.out_dir / FAILED_SCREENSHOT})")
        return 1
    print(f"browser test passed in {time.monotonic() - started:.0f} s: {chosen}; "
          f"screenshot {config.out_dir / SCREENSHOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
