"""`python -m deephalo_core <command> ...`: one entry, each command lives in its own module."""
import importlib
import sys

COMMANDS = {
    "synth": ("deephalo_core.synth", "write a synthetic snapshot in the TNG file layout"),
    "train": ("deephalo_core.train", "train a segmentation model into a run directory"),
    "evaluate": ("deephalo_core.evaluate", "score a checkpoint or baseline on a split"),
    "predict": ("deephalo_core.catalog", "predict every halo of a snapshot into an HDF5 catalog"),
    "bench": ("deephalo_core.bench", "side-by-side speed benchmarks"),
    "realism": ("deephalo_core.realism", "compare halos of a synthetic snapshot with a real one"),
}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: python -m deephalo_core <command> [options]\n\ncommands:")
        for name, (_, text) in COMMANDS.items():
            print(f"  {name:10s} {text}")
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nunknown command {argv[0]!r}", file=sys.stderr)
            return 2
        return 0
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
