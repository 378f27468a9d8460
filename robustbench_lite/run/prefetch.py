"""Blocks ready on the device ahead of use: the next block's read, decode and copy overlap the current compute.

On CUDA a feeder thread takes blocks from the DataLoader (workers read, decode and pin them),
copies or decodes them on a side stream and hands them over through a bounded queue; the
consumer's stream waits on each block's event, so the GPU never waits for the CPU between
blocks. On the CPU there is nothing to overlap with (the model uses every core): blocks are
produced in line, as before, and the results are the same bytes.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator

import torch

Finish = Callable[[object], tuple]  # a loader batch -> (indices, pixels on the device, failures)
_END = object()


def _put(out: queue.Queue, item, stop: threading.Event) -> bool:
    """Queue `item` unless the consumer has stopped; False when it has."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _feed(source: Iterable, finish: Finish, device: torch.device, out: queue.Queue, stop: threading.Event) -> None:
    """Feeder thread: finish each block (on a side stream on CUDA) and queue it with its ready event."""
    try:
        cuda = device.type == "cuda"
        side = torch.cuda.Stream(device) if cuda else None
        for batch in source:
            if cuda:
                with torch.cuda.device(device), torch.cuda.stream(side):
                    result = finish(batch)
                    event = torch.cuda.Event()
                    event.record(side)
            else:
                result, event = finish(batch), None
            if not _put(out, (result, event), stop):
                return
        _put(out, (_END, None), stop)
    except BaseException as exc:  # raised again in the consumer, where it is one photo's or the run's problem
        _put(out, (exc, None), stop)


def prefetch_blocks(source: Iterable, finish: Finish, device: torch.device, depth: int = 2,
                    threaded: bool | None = None) -> Iterator[tuple]:
    """Yield `finish(batch)` for each loader batch; threaded (default: on CUDA) up to `depth` blocks ahead."""
    if not (device.type == "cuda" if threaded is None else threaded):
        for batch in source:
            yield finish(batch)
        return
    out: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=(source, finish, device, out, stop), daemon=True,
                              name="robustbench-lite-prefetch")
    feeder.start()
    try:
        while True:
            result, event = out.get()
            if result is _END:
                return
            if isinstance(result, BaseException):
                raise result
            if event is not None:
                stream = torch.cuda.current_stream(device)
                stream.wait_event(event)
                for t in result:
                    if isinstance(t, torch.Tensor) and t.is_cuda:
                        t.record_stream(stream)  # made on the side stream, used on this one
            yield result
    finally:
        stop.set()
        feeder.join(timeout=5)
