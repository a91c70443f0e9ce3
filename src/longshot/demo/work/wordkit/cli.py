"""Command line: ``python -m wordkit.cli COMMAND TEXT...``."""

import sys

import wordkit

CONVERT = {"slug": wordkit.slugify, "snake": wordkit.snake_case, "camel": wordkit.camel_case}
USAGE = "usage: python -m wordkit.cli {slug,snake,camel,count,wrap} TEXT..."


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in (*CONVERT, "count", "wrap"):
        print(USAGE, file=sys.stderr)
        return 2
    command, text = argv[0], " ".join(argv[1:])
    if command == "count":
        for word, n in wordkit.top_words(text, 10):
            print(f"{n} {word}")
    elif command == "wrap":
        print("\n".join(wordkit.wrap(text, 40)))
    else:
        print(CONVERT[command](text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
