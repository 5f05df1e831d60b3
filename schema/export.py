"""Write the SDL of the schema to schema/schema.graphql (`make schema`)."""

import sys
from pathlib import Path

from schema import build_schema

SDL_PATH = Path(__file__).with_name("schema.graphql")


def render_sdl() -> str:
    """Return the schema's SDL exactly as it is committed."""
    return build_schema().as_str() + "\n"


def main() -> None:
    SDL_PATH.write_text(render_sdl(), encoding="utf-8")
    sys.stdout.write(f"wrote {SDL_PATH}\n")


if __name__ == "__main__":
    main()
