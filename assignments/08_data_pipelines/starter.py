# %% [markdown]
# # Data pipelines: dtypes, TensorDataset and DataLoader batches, a Dataset of your own
#
# Data usually arrives as NumPy arrays: `load_boston(return_X_y=True)` gives float64
# features (506, 13) and float64 targets (506,); `load_iris(return_X_y=True)` gives float64
# features (150, 4) and int64 labels (150,). PyTorch's layers expect **float32** inputs,
# and classification losses such as `nn.CrossEntropyLoss` expect **int64** class labels,
# so the material converts them first:
#
#     train_xt = torch.from_numpy(boston_X.astype(np.float32))
#     train_yt = torch.from_numpy(iris_y.astype(np.int64))
#
# and then batches them with `Data.TensorDataset` and `Data.DataLoader`.
#
# 1. `to_regression_tensors(X, y)`: float64 features and targets -> `(float32, float32)`
#    tensors of the same shapes (targets stay 1-D, shape (n,)).
# 2. `to_classification_tensors(X, y)`: float64 features and class labels -> float32
#    features and **int64** labels. The labels may come as int64 (load_iris) or as
#    float64 such as 0.0, 1.0, 2.0 (read from a CSV file).
# 3. `first_batch(features, labels, batch_size)`: the first `(b_x, b_y)` of a `DataLoader`
#    over `TensorDataset(features, labels)` with **shuffle off**, so the batch is the first
#    `batch_size` rows. The arguments are already tensors. Careful with the material's
#    check loop `for step, (b_x, b_y) in enumerate(train_loader): if step > 0: break`: it
#    assigns b_x, b_y for step 1 before it breaks, so they hold the *second* batch (which
#    is fine for looking at shapes and dtypes, as the material does); here return the first.
# 4. `all_batches(features, labels, batch_size, drop_last=False)`: every `(b_x, b_y)` of
#    that loader, shuffle off, as a list. With n rows there are n // batch_size full
#    batches; the last n % batch_size rows form a smaller last batch, unless `drop_last`
#    is True, which leaves them out.
# 5. `ArrayDataset(features, labels)`: a `Data.Dataset` of your own over NumPy arrays:
#    `__len__` is the number of samples, and `__getitem__(i)` returns the pair
#    (row i of the features as float32, label i as an int64 scalar tensor), whatever the
#    dtypes of the arrays it was given.
# 6. `dataset_batches(features, labels, batch_size)`: every batch of a `DataLoader` over
#    your `ArrayDataset`, shuffle off, as a list.

# %%
import numpy as np  # noqa: F401
import torch  # noqa: F401
import torch.utils.data as Data


# %%
def to_regression_tensors(X, y):
    """float64 features and targets -> (float32 tensor, float32 tensor)."""
    raise NotImplementedError("to_regression_tensors: torch.from_numpy(X.astype(np.float32)), ...")


# %%
def to_classification_tensors(X, y):
    """float64 features and class labels -> (float32 tensor, int64 tensor)."""
    raise NotImplementedError("to_classification_tensors: features to float32, labels to int64")


# %%
def first_batch(features, labels, batch_size):
    """The first (b_x, b_y) of a DataLoader(TensorDataset(...), shuffle=False)."""
    raise NotImplementedError("first_batch: TensorDataset, DataLoader(shuffle=False), the first batch")


# %%
def all_batches(features, labels, batch_size, drop_last=False):
    """Every (b_x, b_y) of the DataLoader, in order, as a list."""
    raise NotImplementedError("all_batches: [(b_x, b_y) for b_x, b_y in loader]")


# %%
class ArrayDataset(Data.Dataset):
    """A Dataset over NumPy features and labels: float32 rows, int64 labels."""

    def __init__(self, features, labels):
        """Keep the features and labels (converted to float32 and int64 tensors)."""
        raise NotImplementedError("ArrayDataset: convert and keep the features and labels")

    def __len__(self):
        """The number of samples."""
        raise NotImplementedError("ArrayDataset.__len__: the number of rows")

    def __getitem__(self, index):
        """(features row, label) of sample `index`."""
        raise NotImplementedError("ArrayDataset.__getitem__: (row, label) of one sample")


# %%
def dataset_batches(features, labels, batch_size):
    """Every batch of a DataLoader over ArrayDataset(features, labels), in order."""
    raise NotImplementedError("dataset_batches: DataLoader(ArrayDataset(...), shuffle=False)")
