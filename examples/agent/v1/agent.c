/* Example endpoint agent, version 1: scans a directory for a test signature.
 *
 * Local only: it reads the files it is asked to scan and prints a verdict.
 * Its release declares updates.example.com as its only network endpoint
 * (used by a separate updater, not by this binary).
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#define SIGNATURE "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR"

static int scan_file(const char *path) {
    char buf[4096];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, SIGNATURE) != NULL;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".";
    DIR *d = opendir(dir);
    if (!d) { perror(dir); return 2; }
    struct dirent *e;
    int infected = 0;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (scan_file(path)) { printf("infected: %s\n", path); infected++; }
    }
    closedir(d);
    printf("%d infected file(s)\n", infected);
    return infected ? 1 : 0;
}
