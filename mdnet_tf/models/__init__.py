"""Models: graph construction, message passing (TF-native and DGL), MDNet, baselines."""
