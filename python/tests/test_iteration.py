"""Iteration and resume the way PyTorch users expect: every iter() starts afresh, set_epoch after a
load keeps the restored position, a state saved on one rank loads on every rank and under another
world size, DataLoader takes the Loader (workers are refused, never duplicated), and without
drop_last every image is served exactly once."""

import warnings

import pytest
import torch

import pyramid_loader as pl

MIX = "mixsize:14,20,28@0.3,0.3,0.4"


def indices(loader, epoch=None):
    return [b.indices.tolist() for b in loader.batches(epoch)]


def flat(steps):
    return [i for step in steps for i in step]


def test_every_iter_starts_the_epoch_afresh(cache):
    loader = pl.Loader(cache, schedule="fixed:28", batch_size=50, seed=2, workers=2)
    first = [labels.tolist() for _, labels in loader]
    assert loader.epoch == 1  # a complete pass makes the next epoch current
    loader.set_epoch(0)
    for k, (_, labels) in enumerate(loader):
        if k == 3:
            break
    again = [labels.tolist() for _, labels in loader]  # after a break: the epoch from its first batch
    assert again == first
    loader.set_epoch(0)
    peek = next(iter(loader))[1].tolist()
    assert peek == first[0]
    assert next(iter(loader))[1].tolist() == first[0]  # looking at a batch does not consume it


def test_a_second_live_iterator_is_refused(cache):
    loader = pl.Loader(cache, schedule="fixed:28", batch_size=50, workers=2)
    it = iter(loader)
    next(it)
    with pytest.raises(pl.PyramidError, match="one iteration at a time"):
        next(iter(loader))
    del it


def test_the_documented_loop_resumes_where_the_state_says(cache):
    """The README's resume loop: set_epoch at the top of every epoch, after load_state_dict."""
    def make():
        return pl.Loader(cache, schedule=MIX, batch_size=32, epochs=3, seed=11, workers=2)
    reference = make()
    expected = {e: indices(reference, e) for e in range(3)}

    run = make()
    run.set_epoch(1)
    it = run.batches()
    for _ in range(4):
        next(it)
    state = run.state_dict()
    del it

    resumed = make()
    resumed.load_state_dict(state)
    assert len(resumed) == len(expected[1]) - 4  # what remains of the restored epoch
    served = {}
    for epoch in range(state["epoch"], 3):
        resumed.set_epoch(epoch)  # keeps the restored position for epoch 1
        served[epoch] = [labels.shape[0] for _, labels in resumed]
    assert len(served[1]) == len(expected[1]) - 4
    assert [len(s) for s in expected[1][4:]] == served[1]
    assert len(served[2]) == len(expected[2])
    # set_epoch to another epoch drops the restored position.
    other = make()
    other.load_state_dict(state)
    other.set_epoch(2)
    assert indices(other) == expected[2]


def test_one_state_loads_on_every_rank_and_under_another_world_size(cache):
    schedule = "trd:28,14,p=0.5"
    def make(batch, rank, world):
        return pl.Loader(cache, schedule=schedule, batch_size=batch, epochs=2, seed=5, rank=rank, world_size=world, workers=2)
    whole = make(64, 0, 1)
    expected = indices(whole, 1)
    # Two ranks of 32: rank 0 saves after 3 steps.
    ranks = [make(32, r, 2) for r in (0, 1)]
    ranks[0].set_epoch(1)
    it = ranks[0].batches()
    for _ in range(3):
        next(it)
    state = ranks[0].state_dict()
    del it
    assert "rank" not in state["settings"] and state["global_batch"] == 64
    # Every rank loads rank 0's state: the ranks' rests split the rest of the epoch.
    rests = []
    for r in (0, 1):
        loader = make(32, r, 2)
        loader.load_state_dict(state)
        rests.append(indices(loader))
    assert [sorted(a + b) for a, b in zip(*rests)] == [sorted(step) for step in expected[3:]]
    # One process of 64 (the same global batch): the same steps, exactly.
    single = make(64, 0, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        single.load_state_dict(state)
    assert indices(single) == expected[3:]


def test_another_global_batch_warns_and_serves_every_remaining_image_once(cache):
    loader = pl.Loader(cache, schedule="fixed:28", batch_size=64, seed=5, workers=2)
    it = loader.batches(0)
    done = flat(b.indices.tolist() for b in [next(it) for _ in range(2)])
    state = loader.state_dict()
    del it
    other = pl.Loader(cache, schedule="fixed:28", batch_size=40, seed=5, workers=2)
    with pytest.warns(RuntimeWarning, match="global batch of 64, resumed with 40"):
        other.load_state_dict(state)
    rest = flat(indices(other))
    assert not set(done) & set(rest)
    assert len(set(rest)) == len(rest)
    assert len(done) + len(rest) > 600 - 40  # only the last partial step (drop_last) is left out
    mismatched = pl.Loader(cache, schedule="fixed:28", batch_size=64, seed=6, workers=2)
    with pytest.raises(ValueError, match="seed 5 -> 6"):
        mismatched.load_state_dict(state)


def test_a_dataloader_takes_the_loader_and_refuses_workers(cache):
    loader = pl.Loader(cache, schedule="fixed:20", batch_size=50, seed=3, workers=2)
    direct = [labels.tolist() for _, labels in loader]
    loader.set_epoch(0)
    through = [labels.tolist() for _, labels in torch.utils.data.DataLoader(loader, batch_size=None)]
    assert through == direct
    loader.set_epoch(0)
    with pytest.raises(Exception, match="loads on its own threads"):
        for _ in torch.utils.data.DataLoader(loader, batch_size=None, num_workers=2):
            pass

    class Wrapped(torch.utils.data.IterableDataset):
        """The pattern the old fork error suggested: a Loader made in each worker."""
        def __iter__(self):
            return iter(pl.Loader(cache, schedule="fixed:20", batch_size=50, seed=3, workers=1))

    with pytest.raises(Exception, match="loads on its own threads"):
        for _ in torch.utils.data.DataLoader(Wrapped(), batch_size=None, num_workers=2):
            pass


def test_plan_says_how_many_images_drop_last_leaves_out(cache):
    training = pl.Loader(cache, schedule=MIX, batch_size=48, seed=1, workers=1)
    served = sum(step["images"] for step in training.plan()[0])
    assert training.left_out(0) == 600 - served > 0
    evaluation = pl.Loader(cache, schedule=MIX, batch_size=48, seed=1, drop_last=False, workers=1)
    assert evaluation.left_out(0) == 0


@pytest.mark.parametrize("schedule", [MIX, MIX + ",sampling=iid", "fixed:20", "parallel:28,14"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_without_drop_last_every_image_is_served_once(cache, schedule, shuffle):
    counts = {}
    for rank in (0, 1):
        loader = pl.Loader(cache, schedule=schedule, batch_size=48, seed=1, shuffle=shuffle, drop_last=False, rank=rank,
                           world_size=2, workers=2)
        for b in loader.batches(0):
            for i in b.indices.tolist():
                counts[i] = counts.get(i, 0) + 1
    assert sorted(counts) == list(range(600)) and set(counts.values()) == {1}


def test_the_version_is_written_once():
    from importlib.metadata import version
    assert version("pyramid-loader") == pl.__version__
