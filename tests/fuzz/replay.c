/* replay: a harness as an ordinary program, without libFuzzer, so the
 * committed corpus and regression inputs run in every build (and under
 * AddressSanitizer in make check-asan).
 *
 *   fuzz-NAME FILE|DIR...
 *
 * Runs the harness once on each FILE and on each file in each DIR (in name
 * order; names starting with "." are skipped), then prints
 * "fuzz-NAME: N inputs" and exits 0. A crash or a broken check aborts. */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static const char *prog;
static unsigned long ninputs;

static void
run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL, *nb;
	size_t len = 0, cap = 0, n;

	if (!f) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		exit(2);
	}
	do {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			nb = realloc(buf, cap);
			CHECK(nb != NULL);
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		fprintf(stderr, "%s: %s: read error\n", prog, path);
		exit(2);
	}
	fclose(f);
	/* An exact-size copy, so ASan sees a read past the input's end. */
	nb = malloc(len ? len : 1);
	CHECK(nb != NULL);
	memcpy(nb, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(nb, len);
	free(nb);
	ninputs++;
}

static void
run_dir(const char *dir)
{
	struct dirent **ents;
	char path[4096];
	int i, n = scandir(dir, &ents, NULL, alphasort);

	if (n < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, dir, strerror(errno));
		exit(2);
	}
	for (i = 0; i < n; i++) {
		if (ents[i]->d_name[0] != '.') {
			snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
			run_file(path);
		}
		free(ents[i]);
	}
	free(ents);
}

int
main(int argc, char **argv)
{
	struct stat st;
	int i;

	prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	if (argc < 2) {
		fprintf(stderr, "Usage: %s FILE|DIR...\n", prog);
		return 64;
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "%s: %s: %s\n", prog, argv[i], strerror(errno));
			return 2;
		}
		if (S_ISDIR(st.st_mode))
			run_dir(argv[i]);
		else
			run_file(argv[i]);
	}
	printf("%s: %lu inputs\n", prog, ninputs);
	return 0;
}
