"""tools/browser_test.py (make browser-test): its pieces without a browser, and the whole check on request.

The whole check (lesson 06 in JupyterLab in headless Chromium) takes minutes, so ``make test`` skips it:
run ``make browser-test``, or ``FACESTYLE_BROWSER_TEST=1 pytest tests/test_browser.py``. Where Chromium,
chromedriver or selenium is missing it is skipped with the message that says what to install.
"""
import json
import os
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from facestyle_utils.runtime import project_root

ROOT = project_root()
sys.path.insert(0, str(ROOT / "tools"))
import browser_test  # noqa: E402  (tools/browser_test.py)

#: Set to 1 to run the whole browser check in pytest.
SWITCH = "FACESTYLE_BROWSER_TEST"
#: What a notebook shows for the studio when the browser has no widget front end.
STATIC_STUDIO = "VBox(children=(HBox(children=(VBox(children=(HTML(value='<h3>Face style studio</h3>'), ...)),))"


def fake_program(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def bare_path(tmp_path, monkeypatch):
    """PATH is one empty folder: no browser, no driver."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    return folder


@pytest.mark.skipif(os.name == "nt", reason="executable bits")
def test_find_program_takes_the_first_name_on_path_or_the_given_one(bare_path, tmp_path):
    assert browser_test.find_program(browser_test.BROWSER_NAMES) is None
    fake_program(bare_path, "google-chrome")
    chromium = fake_program(bare_path, "chromium")
    assert browser_test.find_program(browser_test.BROWSER_NAMES) == str(chromium)  # the Debian name first
    own = fake_program(tmp_path, "my-chrome")
    assert browser_test.find_program(browser_test.BROWSER_NAMES, str(own)) == str(own)
    assert browser_test.find_program(browser_test.DRIVER_NAMES, str(tmp_path / "missing")) is None


def test_skip_message_names_what_is_missing_and_the_install_commands():
    assert browser_test.missing_requirements("/usr/bin/chromium", "/usr/bin/chromedriver", True) == []
    missing = browser_test.missing_requirements(None, None, False)
    assert missing == ["Chromium (or Chrome)", "chromedriver", "the selenium package"]
    message = browser_test.skip_message(missing)
    assert message.startswith("browser test skipped: Chromium (or Chrome), chromedriver, the selenium package "
                              "not found")
    assert "sudo apt-get install -y chromium chromium-driver" in message
    assert '.venv/bin/python -m pip install -c constraints.txt -e ".[browser]"' in message
    assert "make browser-test" in message


def test_the_pip_command_installs_the_browser_extra_pinned_in_constraints():
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert [r.split(">=")[0] for r in extras["browser"]] == ["selenium"]
    assert "selenium==4.50.0" in (ROOT / "constraints.txt").read_text().splitlines()


@pytest.mark.skipif(os.name == "nt", reason="executable bits")
def test_main_without_a_browser_or_selenium_prints_the_message_and_exits_0(bare_path, monkeypatch, capsys):
    assert browser_test.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("browser test skipped: Chromium (or Chrome), chromedriver") and "apt-get" in out
    fake_program(bare_path, "chromium"), fake_program(bare_path, "chromedriver")
    monkeypatch.setattr(browser_test, "webdriver", None)  # as when selenium is not installed
    assert browser_test.main([]) == 0
    assert capsys.readouterr().out.startswith("browser test skipped: the selenium package not found")


def test_main_picks_the_mode_and_its_folder_and_reports_a_failure(monkeypatch, capsys):
    configs = []

    def fake_check(config):
        configs.append(config)
        if config.timeout_s == 5:
            raise browser_test.CheckFailed("the studio did not render")
        return "face 'astronaut (bundled)'"

    monkeypatch.setattr(browser_test, "find_program", lambda names, given=None: f"/usr/bin/{names[0]}")
    monkeypatch.setattr(browser_test, "webdriver", object())
    monkeypatch.setattr(browser_test, "run_check", fake_check)
    monkeypatch.delenv("FACESTYLE_QUICK", raising=False)
    assert browser_test.main([]) == 0
    monkeypatch.setenv("FACESTYLE_QUICK", "1")
    assert browser_test.main(["--timeout", "5"]) == 1
    monkeypatch.delenv("FACESTYLE_QUICK")
    assert browser_test.main(["--quick"]) == 0
    assert [(c.mode, c.out_dir) for c in configs] == [("full", ROOT / "build" / "browser"),
                                                      ("quick", ROOT / "build" / "quick" / "browser"),
                                                      ("quick", ROOT / "build" / "quick" / "browser")]
    assert configs[0].browser == "/usr/bin/chromium" and configs[0].driver == "/usr/bin/chromedriver"
    out = capsys.readouterr().out
    assert "browser test FAILED: the studio did not render" in out
    assert f"screenshot: {ROOT / 'build' / 'quick' / 'browser' / '06_studio_failed.png'}" in out
    assert "browser test passed in" in out and f"screenshot {ROOT / 'build' / 'browser' / '06_studio.png'}" in out


def test_server_command_serves_one_folder_on_localhost_with_the_token(tmp_path, monkeypatch):
    monkeypatch.setattr(browser_test, "curve_available", lambda: False)
    command = browser_test.server_command("py", 8123, "secret", tmp_path / "out", tmp_path / "lab")
    assert command[:4] == ["py", "-m", "jupyterlab", "--no-browser"]
    for option in ("--ServerApp.ip=127.0.0.1", "--ServerApp.port=8123", "--ServerApp.port_retries=0",
                   "--IdentityProvider.token=secret", f"--ServerApp.root_dir={tmp_path / 'out'}",
                   f"--LabApp.user_settings_dir={tmp_path / 'lab' / 'user-settings'}",
                   f"--LabApp.workspaces_dir={tmp_path / 'lab' / 'workspaces'}", "--LabApp.news_url=None"):
        assert option in command
    monkeypatch.setattr(browser_test, "curve_available", lambda: True)
    encrypted = browser_test.server_command("py", 8123, "secret", tmp_path, tmp_path)
    assert encrypted[-1] == "--MappingKernelManager.transport_encryption=auto"  # as make lab


def test_lab_settings_are_real_jupyterlab_settings(tmp_path):
    """Each setting written exists in the installed JupyterLab's schema, with an allowed value."""
    schemas = Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas"
    if not schemas.is_dir():
        pytest.skip(f"no JupyterLab schemas in {schemas}")
    browser_test.write_lab_settings(tmp_path)
    for name, values in browser_test.LAB_SETTINGS.items():
        written = json.loads((tmp_path / "user-settings" / name).read_text())
        assert written == values
        schema = json.loads((schemas / name.replace(".jupyterlab-settings", ".json")).read_text())
        for key, value in values.items():
            spec = schema["properties"][key]
            allowed = [choice["const"] for choice in spec.get("oneOf", [])] or [value]
            assert value in allowed and isinstance(value, {"boolean": bool, "string": str}[spec["type"]]), key


def test_a_widget_shown_as_text_is_named_as_the_problem():
    problem = browser_test.static_widget_problem(STATIC_STUDIO)
    assert problem.startswith("the studio did not render: the app cell shows \"VBox(children=(HBox(")
    assert "jupyterlab_widgets" in problem
    assert browser_test.static_widget_problem("lesson 03 model: found, offered first") is None


def test_free_port_can_be_bound():
    port = browser_test.free_port()
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))


def test_wait_for_server_names_an_exited_or_silent_server(tmp_path):
    log = tmp_path / "jupyter-server.log"
    exited = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    exited.wait()
    with pytest.raises(browser_test.CheckFailed, match=f"JupyterLab exited with status 3; see {log}"):
        browser_test.wait_for_server("http://127.0.0.1:9/api/status", exited, log)
    silent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        url = f"http://127.0.0.1:{browser_test.free_port()}/api/status"
        with pytest.raises(browser_test.CheckFailed, match="JupyterLab did not answer within 1 s"):
            browser_test.wait_for_server(url, silent, log, timeout_s=1.0)
    finally:
        silent.kill()
        silent.wait()


def test_jupyterlab_starts_with_the_token_and_the_checks_settings(tmp_path):
    """The real server (no browser): it answers with the token only, and serves the check's own settings."""
    config = browser_test.Config("chromium", "chromedriver", mode="quick", out_dir=tmp_path)
    with browser_test.jupyterlab(config, "secret") as url:
        with urllib.request.urlopen(f"{url}/lab/api/settings/@jupyterlab/notebook-extension:tracker?token=secret",
                                    timeout=30) as answer:
            settings = json.loads(answer.read())
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(f"{url}/api/contents", timeout=30)
    assert settings["settings"]["windowingMode"] == "none" and settings["settings"]["autoStartDefaultKernel"]
    assert "Jupyter Server" in (tmp_path / "jupyter-server.log").read_text()


def test_the_studio_in_a_real_browser():
    """The whole check, as make browser-test runs it (its mode follows FACESTYLE_QUICK); minutes, so on request."""
    missing = browser_test.missing_requirements(browser_test.find_program(browser_test.BROWSER_NAMES),
                                                browser_test.find_program(browser_test.DRIVER_NAMES),
                                                browser_test.selenium_installed())
    if missing:
        pytest.skip(browser_test.skip_message(missing))
    if os.environ.get(SWITCH) != "1":
        pytest.skip(f"the browser check takes minutes: run `make browser-test` or {SWITCH}=1 pytest {__file__}")
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "browser_test.py")], cwd=ROOT,
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0 and "browser test passed" in result.stdout, result.stdout + result.stderr
    folder = browser_test.output_folder(browser_test.runtime.course_mode())
    screenshot = (folder / browser_test.SCREENSHOT).read_bytes()
    assert screenshot.startswith(b"\x89PNG") and len(screenshot) > 50_000


class FakeRunAll(browser_test.StudioPage):
    """run_all against scripted prompt texts ("[ ]:" not run, "[*]:" running, "[3]:" ran), no browser."""

    def __init__(self, runs: list[list[str]], errors: list[str] = ()):
        self.runs, self.errors, self.clicks = runs, list(errors), 0

    def click_menu(self, menu: str, item: str) -> None:
        assert (menu, item) == ("Run", "Run All Cells")
        self.clicks += 1

    def wait(self, timeout_s, condition, failure):
        return True  # the prompts below are already final

    def texts(self, css: str, within=None) -> list[str]:
        if "stderr" in css:
            return self.errors
        return self.runs[min(self.clicks, len(self.runs)) - 1]


def test_run_all_runs_again_once_when_cells_stop_without_an_error(capsys):
    """A kernel connection that drops at startup once stopped Run All after the first cell, with no error."""
    page = FakeRunAll([["[1]:", "[ ]:", "[ ]:"], ["[1]:", "[2]:", "[3]:"]])
    page.run_all(60)
    assert page.clicks == 2 and "running all again" in capsys.readouterr().out
    stuck = FakeRunAll([["[1]:", "[ ]:"], ["[1]:", "[ ]:"]])
    with pytest.raises(browser_test.CheckFailed, match=r"code cells \[1\] did not run; last error output: none"):
        stuck.run_all(60)
    assert stuck.clicks == 2
    failed = FakeRunAll([["[1]:", "[ ]:"]], errors=["ZeroDivisionError: division by zero"])
    with pytest.raises(browser_test.CheckFailed, match="last error output: ZeroDivisionError"):
        failed.run_all(60)
    assert failed.clicks == 1  # a real error is reported at once, not run again
