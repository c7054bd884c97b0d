"""The distilled student: any size in, same size out, and distillation moves it towards the teacher."""
import pytest
import torch

from facestyle_utils.datasets import PairedRandomCrop
from facestyle_utils.student import FastStudent, StudentConfig, distillation_loss, label_with_teacher


class Teacher(torch.nn.Module):
    """A fixed 'style' that is easy to learn: darken and swap red and blue."""

    def forward(self, x):
        return 0.8 * x.flip(1)


@pytest.mark.parametrize("size", [(32, 32), (30, 45), (17, 64)])
def test_student_keeps_the_size_and_range(size):
    out = FastStudent(StudentConfig(base_channels=8, residual_blocks=1))(torch.rand(2, 3, *size))
    assert out.shape == (2, 3, *size) and 0 <= out.min() and out.max() <= 1


def test_config_is_validated():
    with pytest.raises(ValueError, match="base_channels"):
        StudentConfig(base_channels=2)
    with pytest.raises(ValueError, match="tone_curve must be True or False"):
        StudentConfig(tone_curve="yes")


def test_the_tone_curve_maps_the_students_output_last():
    torch.manual_seed(0)
    plain = FastStudent(StudentConfig(base_channels=8, residual_blocks=1)).eval()
    torch.manual_seed(0)
    curved = FastStudent(StudentConfig(base_channels=8, residual_blocks=1, tone_curve=True)).eval()
    image = torch.rand(1, 3, 18, 22)
    with torch.no_grad():
        assert torch.allclose(curved(image), plain(image), atol=1e-6)  # a new curve is the identity
        curved.tone_curve.knots.fill_(0.25)  # a flat curve: every pixel becomes 0.25
        assert torch.allclose(curved(image), torch.full_like(image, 0.25))


def test_distillation_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    student = FastStudent(StudentConfig(base_channels=8, residual_blocks=1))
    photos = torch.rand(4, 3, 32, 32)
    batch = (photos, Teacher()(photos))
    optimizer = torch.optim.Adam(student.parameters(), lr=5e-3)
    first, _ = distillation_loss(student, batch)
    assert first.item() == pytest.approx((student(photos) - batch[1]).abs().mean().item())  # L1 to the labels
    for _ in range(60):
        loss, parts = distillation_loss(student, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    final, parts = distillation_loss(student, batch)
    assert final.item() < 0.8 * first.item()
    assert parts["l1_to_teacher"] == pytest.approx(final.item())


class Counting(torch.nn.Module):
    """A teacher with one weight that counts the photos it saw and records its mode and the batch sizes."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.5))
        self.calls = []

    def forward(self, x):
        self.calls.append((len(x), self.training, torch.is_grad_enabled()))
        return self.scale * x


def test_the_teacher_labels_each_photo_once_and_reading_the_pairs_never_runs_it():
    photos = [(torch.rand(3, 16, 20), torch.zeros(3, 16, 20)) for _ in range(5)]  # (photo, unused target)
    teacher = Counting().train()
    labelled = label_with_teacher(teacher, photos, batch_size=2)
    assert teacher.calls == [(2, False, False), (2, False, False), (1, False, False)]  # eval mode, no gradients
    assert teacher.training  # handed back in the mode it came in
    assert len(labelled) == 5 and labelled.seconds >= 0
    for i, (photo, label) in enumerate(photos):
        got_photo, got_label = labelled[i]
        assert torch.equal(got_photo, photo) and torch.allclose(got_label, 0.5 * photo)
        assert got_label.dtype == torch.float32 and not got_label.requires_grad
    torch.manual_seed(0)
    cropped = label_with_teacher(teacher, photos, transform=PairedRandomCrop(8))
    photo, label = cropped[3]
    assert photo.shape == label.shape == (3, 8, 8) and torch.allclose(label, 0.5 * photo)  # one crop for both
    assert teacher.calls[3:] == [(5, False, False)]  # one batch of 16 at most; reading items runs no teacher


def test_a_teacher_without_weights_labels_on_the_cpu_and_a_failure_restores_its_mode():
    photos = [torch.rand(3, 8, 8) for _ in range(3)]
    labelled = label_with_teacher(Teacher(), photos)  # no parameters: runs on the CPU
    assert torch.allclose(labelled[2][1], 0.8 * photos[2].flip(0))

    class Broken(Counting):
        def forward(self, x):
            raise RuntimeError("out of memory")

    broken = Broken().train()
    with pytest.raises(RuntimeError, match="out of memory"):
        label_with_teacher(broken, photos)
    assert broken.training


def test_the_distillation_loss_refuses_a_batch_without_matching_labels():
    student = FastStudent(StudentConfig(base_channels=8, residual_blocks=1))
    with pytest.raises(ValueError, match=r"needs a \(photos, labels\) pair of one shape, got \(2, 3, 8, 8\)"):
        distillation_loss(student, torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"got \[\(2, 3, 8, 8\), \(2, 3, 4, 4\)\]"):
        distillation_loss(student, (torch.rand(2, 3, 8, 8), torch.rand(2, 3, 4, 4)))


def test_labelling_refuses_empty_or_mixed_size_photos():
    with pytest.raises(ValueError, match="no items to stack"):
        label_with_teacher(Counting(), [])
    with pytest.raises(ValueError, match="differs in size"):
        label_with_teacher(Counting(), [torch.rand(3, 8, 8), torch.rand(3, 8, 9)])


def test_student_model_file_round_trip(tmp_path):
    from facestyle_utils.checkpoints import load_model, read_model_file, save_model

    student = FastStudent(StudentConfig(base_channels=8, residual_blocks=1)).eval()
    path = save_model(student, tmp_path / "s.pt", kind="student", metadata={"teacher": "dcnn"})
    assert read_model_file(path)["kind"] == "student"
    loaded = load_model(path)
    x = torch.rand(1, 3, 20, 24)
    assert torch.equal(loaded(x), student(x)) and loaded.metadata == {"teacher": "dcnn"}


@pytest.mark.parametrize("mode", ["eager", "inference_mode"])
@pytest.mark.parametrize("blocks", [0, 1])
def test_tiny_and_odd_sizes_give_same_size_outputs(mode, blocks):
    student = FastStudent(StudentConfig(base_channels=8, residual_blocks=blocks)).eval()
    for size in [(1, 1), (1, 7), (7, 1), (2, 3), (3, 200), (12, 12), (15, 17)]:
        with torch.inference_mode() if mode == "inference_mode" else torch.enable_grad():
            out = student(torch.rand(2, 3, *size))
        assert out.shape == (2, 3, *size), size
        assert 0 <= out.min() and out.max() <= 1


def test_bad_inputs_are_refused_clearly():
    student = FastStudent(StudentConfig(base_channels=8, residual_blocks=1))
    with pytest.raises(ValueError, match=r"^image is 0x4 px \(height x width\): an empty image"):
        student(torch.rand(1, 3, 0, 4))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        student(torch.rand(3, 16, 16))


# Issue #14 (F6, F19): other dtypes and empty batches are refused with one clear line.
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.float64])
def test_student_refuses_other_dtypes_naming_the_fix(dtype):
    with pytest.raises(ValueError, match=rf"^images: got {dtype} images; pass float images in \[0, 1\], "
                                         r"e.g. image_io.to_float_batch\(batch\)$"):
        FastStudent()(torch.ones(1, 3, 8, 8, dtype=dtype))


def test_student_refuses_an_empty_batch():
    with pytest.raises(ValueError, match=r"^images: the batch is empty \(shape \(0, 3, 8, 8\)\)"):
        FastStudent()(torch.rand(0, 3, 8, 8))


def test_student_takes_bfloat16_under_autocast():
    torch.manual_seed(0)
    student, image = FastStudent().eval(), torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        expected = student(image)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = student(image.bfloat16())
    assert out.shape == (1, 3, 8, 8) and torch.allclose(out.float(), expected, atol=0.05)


@pytest.mark.parametrize("residual", [True, False])
def test_residual_decides_what_a_zero_output_layer_gives(residual):
    # residual: a zero change gives the photo back; otherwise the network's own image, sigmoid(0) = mid-gray.
    student = FastStudent(StudentConfig(base_channels=8, residual_blocks=1, residual=residual)).eval()
    torch.nn.init.zeros_(student.out.weight)
    torch.nn.init.zeros_(student.out.bias)
    image = torch.rand(2, 3, 20, 28) * 0.9 + 0.05
    with torch.no_grad():
        out = student(image)
    expected = image if residual else torch.full_like(image, 0.5)
    assert torch.allclose(out, expected, atol=1e-5)


def test_residual_must_be_a_bool_and_survives_the_model_file(tmp_path):
    from facestyle_utils.checkpoints import load_model, save_model

    with pytest.raises(ValueError, match="residual must be True or False, not 'no'"):
        StudentConfig(residual="no")
    student = FastStudent(StudentConfig(base_channels=8, residual_blocks=1, residual=False)).eval()
    loaded = load_model(save_model(student, tmp_path / "painted.pt", kind="student"))
    x = torch.rand(1, 3, 16, 16)
    assert loaded.config.residual is False and torch.equal(loaded(x), student(x))


def test_half_resolution_round_trip_keeps_smooth_images_and_loses_fine_texture():
    from facestyle_utils.metrics import psnr
    from facestyle_utils.student import half_resolution_round_trip

    flat = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(half_resolution_round_trip(flat), flat)  # nothing to lose
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2  # 1-pixel texture: averaged away
    texture = checker.float().expand(1, 3, 16, 16)
    out = half_resolution_round_trip(texture)
    assert out.shape == texture.shape and torch.allclose(out, torch.full_like(texture, 0.5))
    ramp = torch.linspace(0, 1, 32).expand(1, 3, 32, 32)  # a smooth gradient survives (within its edges)
    assert psnr(half_resolution_round_trip(ramp), ramp) > 35 > psnr(out, texture)


@pytest.mark.parametrize("shape", [(1, 3, 1, 8), (3, 8, 8)])
def test_half_resolution_round_trip_refuses_too_small_or_unbatched_images(shape):
    from facestyle_utils.student import half_resolution_round_trip

    with pytest.raises(ValueError, match=rf"H, W >= 2, got shape \({', '.join(map(str, shape))}\)"):
        half_resolution_round_trip(torch.rand(*shape))
