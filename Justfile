# Thin wrappers; every recipe's script also works without `just`.

default: build

build:
    cargo build --release --workspace --locked

test:
    bash scripts/test.sh

lint:
    cargo clippy --workspace --all-targets --locked -- -D warnings

fmt:
    cargo fmt --all

demo:
    bash scripts/demo.sh

bench:
    bash scripts/bench.sh

install prefix="/usr/local" destdir="":
    bash scripts/install.sh --prefix "{{prefix}}" --destdir "{{destdir}}"

release:
    bash scripts/release.sh

image:
    bash scripts/image.sh
