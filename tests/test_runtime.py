"""Device choice, seeding, modes and output folders."""
import random

import numpy as np
import pytest
import torch

from facestyle_utils import runtime


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("yes", True), ("0", False), ("", False)])
def test_quick_mode_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.delenv("FACESTYLE_WORKSHOP", raising=False)
    monkeypatch.setenv("FACESTYLE_QUICK", value)
    assert runtime.quick_mode() is expected
    assert runtime.by_mode(quick="small", workshop="middle", full="big") == ("small" if expected else "big")


def test_workshop_mode_sits_between_quick_and_full_and_has_its_own_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("FACESTYLE_OUTPUT_DIR", str(tmp_path))
    monkeypatch.delenv("FACESTYLE_QUICK", raising=False)
    monkeypatch.setenv("FACESTYLE_WORKSHOP", "1")
    assert runtime.course_mode() == "workshop" and runtime.workshop_mode() and not runtime.quick_mode()
    assert runtime.by_mode(quick="small", workshop="middle", full="big") == "middle"
    assert runtime.output_dir("models") == tmp_path / "workshop" / "models"
    assert runtime.output_dir("models", mode="full") == tmp_path / "models"
    assert runtime.download_dir("paintings") == tmp_path / "paintings"  # downloads are shared by all modes
    assert ("mode", "workshop") in runtime.environment_report(torch.device("cpu"))
    with pytest.raises(ValueError, match="mode 'tiny': expected one of quick, workshop, full"):
        runtime.output_dir("models", mode="tiny")
    with pytest.raises(TypeError):
        runtime.by_mode(quick=1, full=2)  # every setting names its workshop value
    monkeypatch.setenv("FACESTYLE_QUICK", "1")
    with pytest.raises(RuntimeError, match="FACESTYLE_QUICK and FACESTYLE_WORKSHOP are both set"):
        runtime.course_mode()


def test_pick_device_defaults_to_what_is_available(monkeypatch):
    monkeypatch.delenv("FACESTYLE_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else ("mps" if runtime._mps_available() else "cpu")
    assert runtime.pick_device().type == expected


def test_pick_device_can_be_forced_and_refuses_missing_hardware(monkeypatch):
    assert runtime.pick_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("FACESTYLE_DEVICE", "cpu")
    assert runtime.pick_device() == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            runtime.pick_device("cuda")


def test_seed_everything_makes_every_generator_repeat():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    generator = runtime.seed_everything(123)
    first, first_gen = draw(), torch.rand(2, generator=generator)
    generator = runtime.seed_everything(123)
    assert draw() == first
    assert torch.equal(torch.rand(2, generator=generator), first_gen)
    runtime.seed_everything(124)
    assert draw() != first


def test_output_dir_is_created_under_the_override(monkeypatch, tmp_path):
    monkeypatch.setenv("FACESTYLE_OUTPUT_DIR", str(tmp_path / "out"))
    folder = runtime.output_dir("figures", "x")
    assert folder == tmp_path / "out" / "quick" / "figures" / "x" and folder.is_dir()  # tests run in quick mode


def test_output_dir_defaults_to_build_in_the_repository(monkeypatch):
    monkeypatch.delenv("FACESTYLE_OUTPUT_DIR", raising=False)
    root = runtime.project_root()
    assert root is not None and (root / "facestyle_utils").is_dir()
    assert runtime.output_dir() == root / "build" / "quick"
    assert runtime.output_dir(mode="full") == root / "build"


def test_environment_report_names_packages_device_and_mode(monkeypatch):
    monkeypatch.setenv("FACESTYLE_QUICK", "1")
    report = dict(runtime.environment_report(torch.device("cpu")))
    assert report["torch"] == torch.__version__.split("+")[0] or report["torch"].startswith(torch.__version__[:4])
    assert report["device"].startswith("cpu (") and report["mode"] == "quick"
    assert report["running on Colab"] == "False"
    assert runtime.package_version("surely-not-a-real-package") == "not installed"


@pytest.mark.parametrize("flags, expected", [("fpu avx2 fma", False), ("fpu avx512f avx512_bf16", True),
                                             ("fp asimd bf16 i8mm", True)])
def test_cpu_bf16_is_read_from_the_cpu_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert runtime.cpu_has_native_bf16(cpuinfo) is expected
    assert runtime.cpu_has_native_bf16(tmp_path / "missing") is False


def test_cpu_name_is_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B14\nflags\t\t: fpu\n")
    assert runtime.cpu_name(cpuinfo) == "AMD EPYC 9B14"
    assert runtime.cpu_name(tmp_path / "missing")  # falls back to the platform's answer, never empty


def test_autocast_uses_the_device_precision_and_can_be_switched_off():
    with runtime.autocast("cpu"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with runtime.autocast("cpu", enabled=False):
        assert not torch.is_autocast_enabled("cpu")
    assert runtime.mixed_precision_pays("cuda") and not runtime.mixed_precision_pays("mps")


@pytest.mark.parametrize("capability, dtype, words", [((9, 0), torch.bfloat16, "bfloat16 on this GPU"),
                                                      ((8, 0), torch.bfloat16, "bfloat16 on this GPU"),
                                                      ((7, 5), torch.float16, "float16 on this GPU")])
def test_cuda_autocast_is_bfloat16_where_the_gpu_has_bf16_tensor_cores(monkeypatch, capability, dtype, words):
    """float16 made lesson 02's loss NaN on an H200; bfloat16 only where the GPU computes it (A100 and later)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert runtime.cuda_has_native_bf16("cuda") == (dtype == torch.bfloat16)
    assert runtime.mixed_precision_dtype("cuda") == dtype and runtime.mixed_precision_dtype("cpu") == torch.bfloat16
    assert words in runtime.mixed_precision_note("cuda")
    assert not runtime.cuda_has_native_bf16("cpu")


def test_mixed_precision_note_says_why(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    assert runtime.mixed_precision_pays("cpu") and "hardware" in runtime.mixed_precision_note("cpu")
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)
    assert not runtime.mixed_precision_pays("cpu") and "emulate" in runtime.mixed_precision_note("cpu")
    assert runtime.mixed_precision_note("cuda").startswith("autocast on")


def test_compile_ready_names_the_missing_cpp_compiler(monkeypatch):
    monkeypatch.setattr(runtime.sys, "platform", "linux")
    monkeypatch.setattr(runtime, "_cpp_compiler_names", lambda: ["g++"])
    monkeypatch.setattr(runtime.shutil, "which", lambda name: None)
    ready, reason = runtime.compile_ready("cpu")
    assert not ready
    assert reason == ("no C++ compiler found: torch.compile on the CPU looked for g++ on the PATH "
                      "(install it, or set CXX)")
    monkeypatch.setattr(runtime.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert runtime.compile_ready(torch.device("cpu")) == (True, "C++ compiler /usr/bin/g++")


def test_compile_ready_looks_for_inductors_compilers(monkeypatch):
    inductor = pytest.importorskip("torch._inductor.config")
    with inductor.patch({"cpp.cxx": (None, "my-g++")}):  # None: inductor's conda download, not tried
        assert runtime._cpp_compiler_names() == ["my-g++"]
    monkeypatch.setattr(runtime.sys, "platform", "win32")
    monkeypatch.delenv("CXX", raising=False)
    assert runtime._cpp_compiler_names() == ["cl"]
    monkeypatch.setattr(runtime.shutil, "which", lambda name: None)
    ready, reason = runtime.compile_ready("cpu")
    assert not ready and "looked for cl on the PATH (MSVC: run from a Developer Command Prompt" in reason


def test_compile_ready_on_cuda_needs_a_gpu_triton_and_a_c_compiler(monkeypatch):
    import torch.utils._triton as triton_check

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.compile_ready("cuda") == (False, "CUDA is not available here")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(triton_check, "has_triton_package", lambda: False)
    assert runtime.compile_ready("cuda")[1].startswith("Triton is not installed")
    monkeypatch.setattr(triton_check, "has_triton_package", lambda: True)
    monkeypatch.setattr(triton_check, "has_triton", lambda: True)
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr(runtime.shutil, "which", lambda name: None)
    assert runtime.compile_ready("cuda") == (
        False, "no C compiler found: Triton builds its launcher with gcc or clang (or set CC)")
    monkeypatch.setattr(runtime.shutil, "which", lambda name: "/usr/bin/clang" if name == "clang" else None)
    assert runtime.compile_ready("cuda") == (True, "Triton and the C compiler /usr/bin/clang")


def test_compile_ready_answers_here_without_compiling():
    ready, reason = runtime.compile_ready("cpu")
    assert ready is (runtime._first_on_path(runtime._cpp_compiler_names()) is not None)
    assert reason.startswith("C++ compiler " if ready else "no C++ compiler found")


def test_progress_bar_is_plain_text_when_asked(monkeypatch):
    import tqdm.auto
    import tqdm.std

    monkeypatch.setenv("FACESTYLE_PROGRESS", "text")
    with runtime.progress_bar(range(3), disable=True) as bar:
        assert type(bar) is tqdm.std.tqdm and list(bar) == [0, 1, 2]
    monkeypatch.delenv("FACESTYLE_PROGRESS")
    with runtime.progress_bar(total=5, disable=True) as bar:
        assert type(bar) is tqdm.auto.tqdm and bar.total == 5
