// Runs one program and reports its wall time and peak RSS, for bench.py. A small C process is
// the parent on purpose: a child's ru_maxrss starts at its parent's RSS when it forks (Python's
// would be ~15 MB), and environment changes (LD_PRELOAD) must reach the program, not us.
//   measure [--tree] [--timeout S] [--stdout F] [--stderr F] [--env K=V]... -- PROG ARGS...
// Prints "WALL_SECONDS PEAK_RSS_KB STATUS CPU_SECONDS": STATUS is ok, exit:N, signal:N or hang;
// CPU_SECONDS is user + system time of the program and everything it started.
// --tree: waits for every process the program started (we are their subreaper) and takes the
// larger of the biggest single process and the sampled (every 50 ms) sum over the process group.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// Summed RSS (KiB) of the processes in process group `pgid`.
static long group_rss_kb(pid_t pgid) {
  long page_kb = sysconf(_SC_PAGESIZE) / 1024, total = 0;
  DIR* proc = opendir("/proc");
  if (!proc) return 0;
  struct dirent* e;
  char path[300], buf[512];
  while ((e = readdir(proc))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    int fd = open(path, O_RDONLY);
    if (fd < 0) continue;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) continue;
    buf[n] = 0;
    char* after = strrchr(buf, ')');  // "pid (comm) state ppid pgrp ..."
    int ppid, pgrp;
    char state;
    if (!after || sscanf(after + 1, " %c %d %d", &state, &ppid, &pgrp) != 3 || pgrp != pgid)
      continue;
    snprintf(path, sizeof path, "/proc/%s/statm", e->d_name);
    FILE* f = fopen(path, "r");
    long size, resident;
    if (f && fscanf(f, "%ld %ld", &size, &resident) == 2) total += resident * page_kb;
    if (f) fclose(f);
  }
  closedir(proc);
  return total;
}

static volatile sig_atomic_t g_hang;
static pid_t g_child;
static long g_peak_kb;
static double g_cpu_s;

static void account(const struct rusage* ru) {
  if (ru->ru_maxrss > g_peak_kb) g_peak_kb = ru->ru_maxrss;
  g_cpu_s += (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) +
             (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) * 1e-6;
}

static void on_alarm(int sig) {
  (void)sig;
  g_hang = 1;
  kill(-g_child, SIGKILL);
}

// One process: block in wait4 (exact end time); SIGALRM ends a hang.
static int wait_one(pid_t pid, double timeout) {
  g_child = pid;
  signal(SIGALRM, on_alarm);
  alarm((unsigned)timeout);
  int status = 0;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0)
    if (errno != EINTR) return perror("wait4"), 0;
  alarm(0);
  account(&ru);
  return status;
}

// A process tree: poll every 50 ms, sampling the group's RSS, until every process is reaped.
static int wait_tree(pid_t pid, double start, double timeout) {
  int status = 0, st;
  long sampled = 0;
  struct rusage ru;
  for (;;) {
    pid_t got = wait4(-1, &st, WNOHANG, &ru);
    if (got > 0) {
      account(&ru);
      if (got == pid) status = st;
      continue;
    }
    if (got < 0 && errno == ECHILD) break;
    if (!g_hang && now() - start > timeout) {
      g_hang = 1;
      kill(-pid, SIGKILL);
    }
    long s = group_rss_kb(pid);
    if (s > sampled) sampled = s;
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
  }
  if (sampled > g_peak_kb) g_peak_kb = sampled;
  return status;
}

static void redirect(int fd, const char* path, int flags) {
  int f = open(path, flags, 0644);
  if (f < 0 || dup2(f, fd) < 0) _exit(126);
  close(f);
}

int main(int argc, char** argv) {
  int tree = 0, i = 1;
  double timeout = 120;
  const char *out = "/dev/null", *err = "/dev/null";
  char* envs[64];
  int n_env = 0;
  for (; i < argc && strcmp(argv[i], "--") != 0; ++i) {
    if (!strcmp(argv[i], "--tree"))
      tree = 1;
    else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
      timeout = atof(argv[++i]);
    else if (!strcmp(argv[i], "--stdout") && i + 1 < argc)
      out = argv[++i];
    else if (!strcmp(argv[i], "--stderr") && i + 1 < argc)
      err = argv[++i];
    else if (!strcmp(argv[i], "--env") && i + 1 < argc && n_env < 64)
      envs[n_env++] = argv[++i];
    else
      return fprintf(stderr, "measure: bad argument %s\n", argv[i]), 2;
  }
  if (i + 1 >= argc) return fprintf(stderr, "measure: no program after --\n"), 2;
  char** prog = argv + i + 1;
  if (tree) prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  double start = now();
  pid_t pid = fork();
  if (pid < 0) return perror("fork"), 2;
  if (pid == 0) {
    setpgid(0, 0);
    redirect(0, "/dev/null", O_RDONLY);
    redirect(1, out, O_WRONLY | O_CREAT | O_TRUNC);
    redirect(2, err, O_WRONLY | O_CREAT | O_TRUNC);
    for (int e = 0; e < n_env; ++e) putenv(envs[e]);
    execvp(prog[0], prog);
    _exit(127);
  }
  setpgid(pid, pid);  // either side may get here first
  int status = tree ? wait_tree(pid, start, timeout) : wait_one(pid, timeout);
  double wall = now() - start;
  char what[32];
  if (g_hang)
    snprintf(what, sizeof what, "hang");
  else if (WIFSIGNALED(status))
    snprintf(what, sizeof what, "signal:%d", WTERMSIG(status));
  else if (WEXITSTATUS(status))
    snprintf(what, sizeof what, "exit:%d", WEXITSTATUS(status));
  else
    snprintf(what, sizeof what, "ok");
  printf("%.6f %ld %s %.6f\n", wall, g_peak_kb, what, g_cpu_s);
  return 0;
}
