"""The training child process: `python -m workers.child REQUEST_JSON_FILE`.

Training runs in a child so that a time limit or a dying worker really stops it. The child
speaks one JSON object per stdout line: `{"progress": {...}}` while training, then exactly
one `{"result": {...}}` or `{"error": {"kind": ..., "reason": ...}}`. Anything else it
prints (library warnings) goes to stderr.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import traceback
from pathlib import Path
from typing import Any, TextIO


def _emit(out: TextIO, obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj, default=str) + "\n")
    out.flush()


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def main(request_file: str) -> int:
    # The protocol owns stdout; everything the libraries print goes to stderr.
    protocol = sys.stdout
    sys.stdout = sys.stderr
    request = json.loads(Path(request_file).read_text())
    try:
        from workers.jobs.train import TrainingOutOfMemory, run_training

        def progress(step: int, total_steps: int, loss: float | None, tokens: int, elapsed_s: float) -> None:
            _emit(protocol, {"progress": {"step": step, "total_steps": total_steps, "loss": loss,
                                          "tokens": tokens, "elapsed_s": elapsed_s}})

        base = request.get("base_checkpoint")
        cloud = request.get("cloud_file")
        result = run_training(
            params=request["params"],
            seed=int(request["seed"]),
            benchmarks=list(request["benchmarks"]),
            out_dir=Path(request["out_dir"]),
            base_checkpoint=Path(base) if base else None,
            progress=progress,
            cloud_file=Path(cloud) if cloud else None,
        )
    except TrainingOutOfMemory as exc:
        _emit(protocol, {"error": {"kind": "out_of_memory", "reason": str(exc)}})
        return 3
    except (ValueError, TypeError, FileNotFoundError) as exc:
        _emit(protocol, {"error": {"kind": "invalid", "reason": f"{type(exc).__name__}: {exc}"}})
        return 2
    except MemoryError as exc:
        _emit(protocol, {"error": {"kind": "out_of_memory", "reason": f"MemoryError: {exc}"}})
        return 3
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        _emit(protocol, {"error": {"kind": "error", "reason": f"{type(exc).__name__}: {exc}"}})
        return 1
    _emit(protocol, {"result": _plain(result)})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
