# shellcheck shell=bash
# Helpers for image/tests/*.sh: pass/fail counting and a validator binary.
FAILS=0
CHECKS=0
ok() {
    CHECKS=$((CHECKS + 1))
    if eval "$2"; then printf '  ok    %s\n' "$1"; else printf '  FAIL  %s   [%s]\n' "$1" "$2"; FAILS=$((FAILS + 1)); fi
}
finish() {
    printf '%s: %d checks, %d failed\n' "$1" "$CHECKS" "$FAILS"
    ((FAILS == 0))
}
mode_of() { stat -c %a "$1"; }
# An aisopod binary to validate configs with: $AISOPOD_BIN, else one from target/
# (the aarch64 release runs through qemu-user's binfmt handler).
find_aisopod() {
    local repo=$1 c
    for c in "${AISOPOD_BIN:-}" "$repo/target/debug/aisopod" "$repo/target/release/aisopod" \
        "$repo/target/aarch64-unknown-linux-musl/release/aisopod"; do
        [[ -n $c && -x $c ]] && { printf '%s\n' "$c"; return 0; }
    done
    return 1
}
