"""DeepHalo Explorer core: TNG data layer, synthetic snapshots, subhalo segmentation models."""

__version__ = "0.1.0"


def predict(model, halo):
    """Labels for every particle of `halo` (-1 fuzz, 0 primary, 1.. by size); CUDA when available.

    `model` is a loaded method (see `deephalo_core.methods.load_method`), a checkpoint path, or a
    method name ("default", "all-primary", "hdbscan").
    """
    from deephalo_core.methods import predict as _predict

    return _predict(model, halo)
