"""Content, Gram/style, mean-std and total-variation losses: invariants a learner can rely on."""
import pytest
import torch

from facestyle_utils.losses import (
    content_loss,
    gram_matrix,
    mean_std,
    mean_std_loss,
    perceptual_loss,
    relative_loss,
    style_loss,
    total_variation,
)


@pytest.fixture
def features():
    torch.manual_seed(0)
    return torch.rand(2, 8, 6, 5)


def test_gram_matrix_shape_and_value():
    f = torch.arange(12, dtype=torch.float32).reshape(1, 2, 2, 3)
    flat = f.reshape(2, 6)
    expected = flat @ flat.T / (2 * 2 * 3)
    gram = gram_matrix(f)
    assert gram.shape == (1, 2, 2)
    assert torch.allclose(gram[0], expected)


def test_gram_matrix_is_symmetric_positive_semidefinite(features):
    gram = gram_matrix(features)
    assert gram.shape == (2, 8, 8)
    assert torch.allclose(gram, gram.transpose(1, 2))
    eigenvalues = torch.linalg.eigvalsh(gram.double())
    assert eigenvalues.min() > -1e-10


def test_gram_matrix_is_scale_normalised(features):
    tiled = features.repeat(1, 1, 2, 2)  # the same image tiled 2x2: same statistics, 4x the pixels
    assert torch.allclose(gram_matrix(tiled), gram_matrix(features), atol=1e-6)
    assert torch.allclose(gram_matrix(3 * features), 9 * gram_matrix(features), atol=1e-5)


def test_losses_zero_for_identical_inputs_and_positive_otherwise(features):
    other = features + 0.1 * torch.randn_like(features)
    assert content_loss(features, features).item() == 0
    assert content_loss(features, other).item() > 0
    assert style_loss(features, gram_matrix(features)).item() == 0
    assert style_loss(other, gram_matrix(features)).item() > 0
    assert mean_std_loss(features, features).item() == 0
    assert mean_std_loss(other, features).item() > 0


def test_content_loss_is_mean_squared_error():
    a, b = torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, 0.0], [0.0, 3.0]]]])
    assert content_loss(a, b).item() == pytest.approx((1 + 9) / 4)


def test_style_loss_broadcasts_one_target_over_a_batch(features):
    target = gram_matrix(features[:1])
    assert style_loss(features[:1].repeat(3, 1, 1, 1), target).item() == pytest.approx(0.0, abs=1e-12)


def test_style_loss_ignores_where_things_are(features):
    shuffled = features.flatten(2)[..., torch.randperm(30)].reshape(features.shape)
    assert style_loss(shuffled, gram_matrix(features)).item() == pytest.approx(0.0, abs=1e-10)
    assert content_loss(shuffled, features).item() > 0.01


def test_mean_std_statistics():
    f = torch.tensor([1.0, 3.0, 1.0, 3.0]).reshape(1, 1, 2, 2)
    mean, std = mean_std(f)
    assert mean.shape == std.shape == (1, 1, 1, 1)
    assert mean.item() == pytest.approx(2.0)
    assert std.item() == pytest.approx(1.0, abs=1e-4)


def test_total_variation_zero_for_flat_image_and_counts_steps():
    assert total_variation(torch.full((1, 3, 4, 4), 0.7)).item() == 0
    stripes = torch.zeros(1, 1, 2, 2)
    stripes[..., :, 1] = 1.0  # every horizontal neighbour differs by 1, vertical ones do not
    assert total_variation(stripes).item() == pytest.approx(1.0)


def test_gram_matrix_gradient_matches_finite_differences():
    torch.manual_seed(1)
    features = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gram_matrix, (features,))


def test_gram_matrix_gradient_matches_autograd_of_the_formula(features):
    mine = features.clone().requires_grad_(True)
    theirs = features.clone().requires_grad_(True)
    weights = torch.randn(2, 8, 8)  # any upstream gradient, not only a symmetric one
    (gram_matrix(mine) * weights).sum().backward()
    flat = theirs.reshape(2, 8, 30)
    ((flat @ flat.transpose(1, 2) / (8 * 30)) * weights).sum().backward()
    assert torch.allclose(mine.grad, theirs.grad, atol=1e-6)


def test_gram_matrix_stays_float32_under_autocast(features):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gram = gram_matrix(features)
    assert gram.dtype == torch.float32
    assert torch.allclose(gram, gram_matrix(features))


@pytest.mark.parametrize("size, expected", [((1, 1), 0.0), ((1, 3), 0.5), ((3, 1), 0.5), ((2, 2), 1.0)])
def test_total_variation_of_one_pixel_wide_images_is_finite(size, expected):
    image = torch.zeros(1, 3, *size)
    image[..., 1::2, :] += 0.5  # odd rows brighter
    image[..., :, 1::2] += 0.5  # odd columns brighter
    image.requires_grad_(True)
    value = total_variation(image)
    value.backward()
    assert value.item() == pytest.approx(expected)
    assert torch.isfinite(image.grad).all()


def test_perceptual_loss_of_a_batch_is_the_mean_over_its_images():
    torch.manual_seed(0)
    features = torch.rand(4, 3, 5, 5)
    target = torch.rand(4, 3, 5, 5) * torch.tensor([1.0, 5.0, 0.2, 2.0]).view(4, 1, 1, 1)
    each = [perceptual_loss(features[i:i + 1], target[i:i + 1]) for i in range(4)]
    assert perceptual_loss(features, target).item() == pytest.approx(torch.stack(each).mean().item(), rel=1e-6)


def test_perceptual_loss_is_scale_free():
    target, features = torch.rand(1, 8, 4, 4) + 0.5, torch.rand(1, 8, 4, 4)
    assert perceptual_loss(features * 100, target * 100).item() == pytest.approx(
        perceptual_loss(features, target).item(), rel=1e-5)
    assert perceptual_loss(torch.zeros_like(target), target).item() == pytest.approx(1.0)
    assert perceptual_loss(target, target).item() == 0


def test_relative_loss_divides_by_the_reference_mean_square():
    reference = torch.tensor([[1.0, 3.0]])  # mean square 5
    assert relative_loss(torch.tensor(10.0), reference).item() == pytest.approx(2.0)
    per_image = torch.tensor([2.0, 8.0])
    references = torch.tensor([[1.0, 1.0], [2.0, 2.0]])  # mean squares 1 and 4
    assert relative_loss(per_image, references).item() == pytest.approx((2.0 + 2.0) / 2)
    with pytest.raises(ValueError, match="do not match a reference batch of 2 images"):
        relative_loss(torch.tensor([1.0, 2.0, 3.0]), references)


def test_relative_loss_sends_no_gradient_into_the_reference():
    reference = torch.tensor([2.0, 2.0], requires_grad=True)
    loss = torch.tensor(4.0, requires_grad=True)
    relative_loss(loss, reference).backward()
    assert reference.grad is None
    assert loss.grad.item() == pytest.approx(1 / (4 + 1e-8))


def test_mean_std_of_float16_features_is_computed_in_float32():
    # VGG19's relu4_1 features on a face have a variance of about 2e7; float16 stops at 65504.
    torch.manual_seed(4)
    features = torch.randn(2, 3, 8, 8) * 3000 + 500
    mean, std = mean_std(features.half())
    assert mean.dtype == std.dtype == torch.float32
    assert torch.isfinite(std).all()
    expected_mean, expected_std = mean_std(features.half().float())
    assert torch.allclose(std, expected_std) and torch.allclose(mean, expected_mean)
    assert std.min() > 2000  # float16 arithmetic gave inf here


def test_mean_std_of_float64_features_stays_float64_and_matches_instance_norm():
    torch.manual_seed(2)
    features = torch.randn(2, 4, 6, 5, dtype=torch.float64) * 3 + 1
    mean, std = mean_std(features)
    assert mean.dtype == std.dtype == torch.float64 and mean.shape == std.shape == (2, 4, 1, 1)
    normed = torch.nn.functional.instance_norm(features, eps=1e-5)
    assert torch.allclose((features - mean) / std, normed, atol=1e-6)
