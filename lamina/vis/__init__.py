"""Floor 5: visualizations — optimizer paths on 2-D loss surfaces (``optim_paths``) and tools to
look inside CNNs. Plotting needs matplotlib (the optional ``plot`` extra), imported lazily.

Understanding and visualizing CNNs, for any lamina model:

* what the network learned: :func:`plot_filters`, :func:`activations`, :func:`top_activations`,
  :func:`embed_features` (PCA / t-SNE of penultimate features);
* why it decided: :func:`saliency`, :func:`smoothgrad`, :func:`integrated_gradients`,
  :func:`grad_cam` (default layer: :func:`conv_block_layer`), :func:`occlusion`, :func:`deconvnet`,
  :func:`guided_backprop`;
* what it wants to see: :func:`maximize_activation`, :func:`fooling_image`;
* breaking it: :func:`fgsm`, :func:`pgd`;
* network dissection: :func:`dissect`;
* teaching pictures: :func:`plot_decision_boundary`, :func:`plot_computational_graph`,
  :func:`conv_arithmetic_gif`;
* the ``lamina explain`` command: :mod:`lamina.vis.explain_cli`.

Computations return NumPy arrays; pictures are PNG files written with matplotlib (imported
only when a picture is drawn).
"""

from . import optim_paths
from .adversarial import AdversarialResult, fgsm, pgd
from .attribution import (
    conv_block_layer,
    evaluation_mode,
    grad_cam,
    input_gradient,
    integrated_gradients,
    occlusion,
    saliency,
    smoothgrad,
)
from .backprop_rules import deconvnet, guided_backprop, relu_backward_rule
from .dissect import COLOR_NAMES, Dissection, dissect, shapes_concepts
from .features import (
    TopActivations,
    activations,
    embed_features,
    first_conv,
    layer_receptive_field,
    pca,
    penultimate_features,
    top_activations,
    tsne,
)
from .graph import plot_computational_graph, trace
from .maximize import MaximizeResult, fooling_image, gaussian_blur, maximize_activation
from .optim_paths import optimizer_paths, plot_optimizer_paths
from .plots import (
    plot_activation_maps,
    plot_adversarial,
    plot_attributions,
    plot_dissection,
    plot_embedding,
    plot_filters,
    plot_images,
    plot_scores,
    plot_top_patches,
)
from .teaching import conv_arithmetic_frames, conv_arithmetic_geometry, conv_arithmetic_gif, plot_decision_boundary

__all__ = [
    "optim_paths", "optimizer_paths", "plot_optimizer_paths",
    "AdversarialResult", "fgsm", "pgd",
    "conv_block_layer", "evaluation_mode", "grad_cam", "input_gradient", "integrated_gradients", "occlusion",
    "saliency", "smoothgrad",
    "deconvnet", "guided_backprop", "relu_backward_rule",
    "COLOR_NAMES", "Dissection", "dissect", "shapes_concepts",
    "TopActivations", "activations", "embed_features", "first_conv", "layer_receptive_field", "pca",
    "penultimate_features", "top_activations", "tsne",
    "plot_computational_graph", "trace",
    "MaximizeResult", "fooling_image", "gaussian_blur", "maximize_activation",
    "plot_activation_maps", "plot_adversarial", "plot_attributions", "plot_dissection", "plot_embedding",
    "plot_filters", "plot_images", "plot_scores", "plot_top_patches",
    "conv_arithmetic_frames", "conv_arithmetic_geometry", "conv_arithmetic_gif", "plot_decision_boundary",
]
