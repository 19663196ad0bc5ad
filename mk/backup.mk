# Backups (issue 20): `make restore-check` proves a backup restores end to
# end (scripts/restore-check.sh): a running server, `vigil backup`,
# `vigil restore` into a new database and data folder, and the same user,
# detection and image bytes there; with both media stores. A throwaway
# database unless MONGODB_URI is set.
# Included by the top-level Makefile, which defines CARGO and TARGET_DIR.

# The binary as `make test` builds it (target/debug/vigil); see fuzz.mk.
RESTORE_CHECK_BUILD = $(CARGO) test --workspace --lib --bins --tests --no-run --quiet

.PHONY: restore-check

restore-check: deps venv models
	$(RESTORE_CHECK_BUILD)
	MEDIA_STORE=fs scripts/restore-check.sh $(TARGET_DIR)/debug/vigil
	MEDIA_STORE=gridfs scripts/restore-check.sh $(TARGET_DIR)/debug/vigil
