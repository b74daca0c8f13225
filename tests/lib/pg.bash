# A throw-away PostgreSQL for a bats file (owner: migrate).
#
#   setup_file()    { load lib/common; load lib/pg; pg_setup_file; }
#   teardown_file() { load lib/common; load lib/pg; pg_teardown_file; }
#   setup()         { load lib/common; load lib/pg; }
#
# One cluster per file (scripts/pg-tmp), with a database "wa". Load this
# after lib/common in setup() too: common unsets DATABASE_URL, and loading
# this file sets it again from the running cluster.
#
#   PGDIR            the cluster's folder (pg-tmp's DIR)
#   DATABASE_URL     postgresql://postgres@127.0.0.1:PORT/wa
#   psql_q SQL [URL] run SQL with psql -XAtq (stop at the first error)
#   pg_new_db [NAME] create a database, print its URL (name defaults to one
#                    unique to the test)
#   pg_url NAME      the URL of database NAME on this cluster
#   pg_datadir DIR   the data directory of a pg-tmp cluster
#   pg_down / pg_up / pg_restart
#                    stop the server keeping its data, start it again on the
#                    same port, or both: the database going away and back

pg_setup_file() {
	PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/wa-pg.XXXXXX")
	export PGDIR
	"$WA_ROOT/scripts/pg-tmp" start "$PGDIR" >/dev/null
	DATABASE_URL=$(cat "$PGDIR/url")
	export DATABASE_URL
}

pg_teardown_file() {
	if [ -n "${PGDIR:-}" ] && [ -f "$PGDIR/port" ]; then
		"$WA_ROOT/scripts/pg-tmp" stop "$PGDIR"
	fi
}

pg_url() {
	echo "postgresql://postgres@127.0.0.1:$(cat "$PGDIR/port")/$1"
}

psql_q() {
	psql -XAtq -v ON_ERROR_STOP=1 "${2:-$DATABASE_URL}" -c "$1"
}

pg_new_db() {
	local name=${1:-t${BATS_TEST_NUMBER:-0}_${RANDOM}${RANDOM}}
	psql_q "CREATE DATABASE \"$name\"" "$(pg_url postgres)" >/dev/null
	pg_url "$name"
}

pg_down() { "$WA_ROOT/scripts/pg-tmp" down "$PGDIR"; }
pg_up() { "$WA_ROOT/scripts/pg-tmp" up "$PGDIR"; }
pg_restart() { "$WA_ROOT/scripts/pg-tmp" restart "$PGDIR"; }

if [ -n "${PGDIR:-}" ] && [ -f "$PGDIR/url" ]; then
	DATABASE_URL=$(cat "$PGDIR/url")
	export DATABASE_URL
fi

# The data directory of a pg-tmp cluster (to edit its configuration).
pg_datadir() {
	if [ -f "$1/home" ]; then
		echo "$(cat "$1/home")/data"
	else
		echo "$1/data"
	fi
}
