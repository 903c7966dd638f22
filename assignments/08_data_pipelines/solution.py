"""Reference solution: dtype conversions, TensorDataset/DataLoader batches, a custom Dataset."""

import numpy as np
import torch
import torch.utils.data as Data


def to_regression_tensors(X, y):
    """float64 features and targets (load_boston) -> float32 tensors."""
    train_xt = torch.from_numpy(X.astype(np.float32))
    train_yt = torch.from_numpy(y.astype(np.float32))
    return train_xt, train_yt


def to_classification_tensors(X, y):
    """float64 features and class labels (load_iris) -> float32 features, int64 labels."""
    train_xt = torch.from_numpy(X.astype(np.float32))
    train_yt = torch.from_numpy(y.astype(np.int64))
    return train_xt, train_yt


def first_batch(features, labels, batch_size):
    """The first (b_x, b_y) of a DataLoader over TensorDataset(features, labels), in order."""
    loader = Data.DataLoader(Data.TensorDataset(features, labels), batch_size=batch_size,
                             shuffle=False)
    for b_x, b_y in loader:
        return b_x, b_y


def all_batches(features, labels, batch_size, drop_last=False):
    """Every (b_x, b_y) of the DataLoader, in order, as a list."""
    loader = Data.DataLoader(Data.TensorDataset(features, labels), batch_size=batch_size,
                             shuffle=False, drop_last=drop_last)
    return [(b_x, b_y) for b_x, b_y in loader]


class ArrayDataset(Data.Dataset):
    """A Dataset over NumPy features and labels: float32 rows, int64 labels."""

    def __init__(self, features, labels):
        """Convert once, here, rather than in every __getitem__."""
        self.features = torch.from_numpy(features.astype(np.float32))
        self.labels = torch.from_numpy(labels.astype(np.int64))

    def __len__(self):
        """The number of samples (rows), not of features."""
        return len(self.labels)

    def __getitem__(self, index):
        """(features row, label) of sample `index`."""
        return self.features[index], self.labels[index]


def dataset_batches(features, labels, batch_size):
    """Every batch of a DataLoader over ArrayDataset(features, labels), in order."""
    loader = Data.DataLoader(ArrayDataset(features, labels), batch_size=batch_size, shuffle=False)
    return [(b_x, b_y) for b_x, b_y in loader]
