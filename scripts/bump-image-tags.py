"""Points one server's overlays at freshly pushed images: what CI runs after a build.

For every `realtor-*` entry of `images:` in ServidorN/k8s/overlays/*/kustomization.yaml it sets
newTag (and, with --registry, newName = REGISTRY/<name without realtor->), exactly the fields
`kustomize edit set image realtor-X=REGISTRY/X:TAG` sets. It is done here rather than with the
kustomize binary because that binary cannot be installed offline (no wheel, no Go toolchain),
and the tests must run this logic. Only the `images:` block is rewritten, so the overlay's
comments survive; it must therefore be the file's last key. Touches no other server's files.
"""

import argparse
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUR_IMAGES = "realtor-"


def bump_overlay(kustomization: Path, tag: str, registry: str | None) -> bool:
    text = kustomization.read_text()
    match = re.search(r"^images:\n", text, flags=re.MULTILINE)
    if match is None:
        return False
    head, block = text[: match.start()], text[match.start() :]
    if re.search(r"^[^\s#-]", text[match.end() :], flags=re.MULTILINE):
        raise SystemExit(f"bump-image-tags: {kustomization}: `images:` must be the last key")
    images = yaml.safe_load(block)["images"]
    for image in images:
        if image["name"].startswith(OUR_IMAGES):
            image["newTag"] = tag
            image.pop("digest", None)
            if registry:
                image["newName"] = f"{registry}/{image['name'].removeprefix(OUR_IMAGES)}"
    new_block = yaml.safe_dump({"images": images}, sort_keys=False, default_flow_style=False)
    if new_block == block:
        return False
    kustomization.write_text(head + new_block)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server", help="Servidor1, Servidor2 or Servidor3")
    parser.add_argument("tag", help="the image tag to deploy, e.g. the commit sha")
    parser.add_argument("--registry", help="image prefix, e.g. ghcr.io/owner/repo (lowercase)")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    args = parser.parse_args()
    overlays = sorted((args.root / args.server / "k8s" / "overlays").glob("*/kustomization.yaml"))
    if not overlays:
        raise SystemExit(f"bump-image-tags: server={args.server!r} has no overlays under {args.root}")
    for kustomization in overlays:
        outcome = "bumped" if bump_overlay(kustomization, args.tag, args.registry) else "unchanged"
        print(f"bump-image-tags: {kustomization.relative_to(args.root)} {outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
