"""Pretraining: the engine, its loop, optimisers, sampling and the monitor."""
