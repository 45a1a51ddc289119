/* An LD_PRELOAD shim that makes file output fail, for the fault-injection tests (issue 18).
 *
 *   SIT_FAULT="OP:ERRNO:PATH_PART[:SKIP]"
 *
 * OP is write (write, writev, pwrite, pwrite64, fwrite, fflush: the ways bytes reach a
 * file from our code, libstdc++ and HDF5), fsync (fsync, fdatasync) or rename; ERRNO is ENOSPC, EIO, EDQUOT or EROFS;
 * PATH_PART is a substring of the file's path (a write's file descriptor is resolved
 * through /proc/self/fd; a rename matches its source or its target). The first SKIP
 * matching calls succeed (default 0), every later one fails with ERRNO and writes nothing.
 * Each injected failure is reported on stderr as "fault_inject: OP PATH -> ERRNO".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static char g_op[16], g_part[512];
static int g_errno = 0;
static long g_skip = 0;
static int g_parsed = 0;

static void parse(void) {
  if (g_parsed) return;
  g_parsed = 1;
  const char* spec = getenv("SIT_FAULT");
  if (!spec) return;
  char err[32] = {0};
  long skip = 0;
  if (sscanf(spec, "%15[^:]:%31[^:]:%511[^:]:%ld", g_op, err, g_part, &skip) < 3) {
    fprintf(stderr, "fault_inject: SIT_FAULT must be OP:ERRNO:PATH_PART[:SKIP], got '%s'\n", spec);
    abort();
  }
  g_skip = skip;
  if (strcmp(err, "ENOSPC") == 0) g_errno = ENOSPC;
  else if (strcmp(err, "EIO") == 0) g_errno = EIO;
  else if (strcmp(err, "EDQUOT") == 0) g_errno = EDQUOT;
  else if (strcmp(err, "EROFS") == 0) g_errno = EROFS;
  else {
    fprintf(stderr, "fault_inject: unknown errno '%s'\n", err);
    abort();
  }
}

/* Whether this call fails: the operation and the path match, after SKIP matches. */
static int inject(const char* op, const char* path) {
  parse();
  if (!g_errno || strcmp(op, g_op) != 0 || !path || !strstr(path, g_part)) return 0;
  if (g_skip > 0) {
    --g_skip;
    return 0;
  }
  char line[700];
  const int n = snprintf(line, sizeof line, "fault_inject: %s %s -> %s\n", op, path,
                         strerror(g_errno));
  if (n > 0) syscall(SYS_write, 2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
  errno = g_errno;
  return 1;
}

static const char* fd_path(int fd, char* buf, size_t size) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = readlink(link, buf, size - 1);
  if (n < 0) return NULL;
  buf[n] = 0;
  return buf;
}

/* The next definition of `name` (libc's), looked up once. */
#define REAL(name)                                  \
  static __typeof__(&name) real_##name = NULL;      \
  if (!real_##name) real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void* p, size_t n) {
  REAL(write);
  char buf[4096];
  if (fd > 2 && inject("write", fd_path(fd, buf, sizeof buf))) return -1;
  return real_write(fd, p, n);
}

ssize_t writev(int fd, const struct iovec* iov, int n) {
  REAL(writev);
  char buf[4096];
  if (fd > 2 && inject("write", fd_path(fd, buf, sizeof buf))) return -1;
  return real_writev(fd, iov, n);
}

ssize_t pwrite(int fd, const void* p, size_t n, off_t off) {
  REAL(pwrite);
  char buf[4096];
  if (inject("write", fd_path(fd, buf, sizeof buf))) return -1;
  return real_pwrite(fd, p, n, off);
}

ssize_t pwrite64(int fd, const void* p, size_t n, off_t off) {
  REAL(pwrite64);
  char buf[4096];
  if (inject("write", fd_path(fd, buf, sizeof buf))) return -1;
  return real_pwrite64(fd, p, n, off);
}

size_t fwrite(const void* p, size_t size, size_t count, FILE* f) {
  REAL(fwrite);
  char buf[4096];
  if (fileno(f) > 2 && inject("write", fd_path(fileno(f), buf, sizeof buf))) return 0;
  return real_fwrite(p, size, count, f);
}

int fflush(FILE* f) {
  REAL(fflush);
  char buf[4096];
  if (f && fileno(f) > 2 && inject("write", fd_path(fileno(f), buf, sizeof buf))) return EOF;
  return real_fflush(f);
}

int fsync(int fd) {
  REAL(fsync);
  char buf[4096];
  if (inject("fsync", fd_path(fd, buf, sizeof buf))) return -1;
  return real_fsync(fd);
}

int fdatasync(int fd) {
  REAL(fdatasync);
  char buf[4096];
  if (inject("fsync", fd_path(fd, buf, sizeof buf))) return -1;
  return real_fdatasync(fd);
}

int rename(const char* from, const char* to) {
  REAL(rename);
  parse();
  if (inject("rename", strstr(from, g_part) ? from : to)) return -1;
  return real_rename(from, to);
}
