// libheapledger_reporter.so: symbolizes (libdw), formats (fmt, nlohmann-json), logs (spdlog) and
// writes the reports. Loaded with RTLD_LOCAL by libheapledger.so when it first has something to
// say; everything here runs with the caller's re-entry guard set.
#include <fcntl.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "tracker/report_json.h"
#include "tracker/report_model.h"
#include "tracker/report_text.h"
#include "tracker/runtime_api.h"
#include "tracker/suppressions.h"
#include "tracker/symbolizer.h"

namespace heapledger::detail {
namespace {

// Never destroyed: warnings can come after static destructors.
spdlog::logger& diagnostics() {
  static spdlog::logger* logger = [] {
    auto* l = new spdlog::logger("heapledger", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_pattern("heapledger: %v");
    return l;
  }();
  return *logger;
}

void warn(const char* line) { diagnostics().warn("warning: {}", line); }

std::string expand_pid(const char* path) {
  std::string out;
  for (const char* p = path; *p; ++p) {
    if (p[0] == '%' && p[1] == 'p') {
      out += std::to_string(getpid());
      ++p;
    } else {
      out += *p;
    }
  }
  return out;
}

bool write_all(int fd, const std::string& text) {
  for (std::size_t done = 0; done < text.size();) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// Complete or absent: written to a temporary file beside the target, then renamed over it.
bool write_file_atomically(const std::string& path, const std::string& text, std::string* error) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return *error = std::strerror(errno), false;
  bool ok = write_all(fd, text);
  if (!ok) *error = std::strerror(errno);
  if (close(fd) != 0 && ok) ok = false, *error = std::strerror(errno);
  if (ok && rename(tmp.c_str(), path.c_str()) != 0) ok = false, *error = std::strerror(errno);
  if (!ok) unlink(tmp.c_str());
  return ok;
}

// A report that cannot go where it was asked to goes to stderr, after a one-line warning.
void deliver(const char* what, const char* target, const std::string& text) {
  if (!std::strcmp(target, "stderr")) {
    write_all(STDERR_FILENO, text);
    return;
  }
  std::string path = expand_pid(target);
  std::string error;
  if (write_file_atomically(path, text, &error)) return;
  diagnostics().warn("warning: cannot write the {} report to {}: {}; writing it to stderr", what,
                     path, error);
  write_all(STDERR_FILENO, text);
}

void symbolize_all(Report& r) {
  Symbolizer sym;
  for (Leak& l : r.leaks) l.stack = sym.symbolize(l.stack);
  for (PeakSite& p : r.peak) p.stack = sym.symbolize(p.stack);
  for (HeapError& e : r.errors) {
    e.stack = sym.symbolize(e.stack);
    if (e.alloc_stack) e.alloc_stack = sym.symbolize(*e.alloc_stack);
    if (e.free_stack) e.free_stack = sym.symbolize(*e.free_stack);
  }
}

void apply_suppressions(Report& r, const char* path) {
  std::vector<std::string> warnings;
  Suppressions builtin = Suppressions::builtin();
  builtin.apply(r);
  if (path && *path) {
    Suppressions user;
    user.load(path, &warnings);
    user.apply(r);
  }
  for (const std::string& w : warnings) diagnostics().warn("warning: {}", w);
}

// A program that frees nothing at exit (compilers, interpreters) holds tens of thousands of
// reachable call sites; listing them all would make the report huge and slow to symbolize.
constexpr std::size_t kReachableSitesListed = 500;

void trim_reachable(Report& r, bool show_all) {
  if (show_all) return;
  std::size_t kept = 0;
  std::vector<Leak> leaks;
  leaks.reserve(r.leaks.size());
  for (Leak& l : r.leaks) {  // sorted by bytes: the first ones are the largest
    if (l.kind == "reachable" && kept++ >= kReachableSitesListed) {
      ++r.reachable_sites_omitted;
      continue;
    }
    leaks.push_back(std::move(l));
  }
  r.leaks = std::move(leaks);
}

void write_reports(Report* report, const ReportRequest* req) {
  bool text = std::strcmp(req->log_path, "none") != 0;
  bool json = req->json_path[0] != 0;
  // Suppressions match symbolized names; without a report and without suppressions that could
  // change the exit status, symbolizing would be wasted work.
  if (!text && !json && !(req->suppressions_path && *req->suppressions_path)) return;
  trim_reachable(*report, req->show_reachable);
  symbolize_all(*report);
  if (!req->errors_only) apply_suppressions(*report, req->suppressions_path);
  if (std::strcmp(req->log_path, "none") != 0) {
    heapledger::TextOptions opts;
    opts.show_reachable = req->show_reachable;
    opts.max_leaks = static_cast<std::size_t>(req->max_leaks);
    opts.errors_only = req->errors_only;
    deliver("text", req->log_path, render_text(*report, opts));
  }
  if (req->json_path[0]) deliver("JSON", req->json_path, to_json(*report) + "\n");
}

}  // namespace
}  // namespace heapledger::detail

extern "C" __attribute__((visibility("default"))) const heapledger::detail::ReporterApi*
heapledger_reporter_api() {
  using namespace heapledger::detail;
  static const ReporterApi api{kRuntimeAbiVersion, warn, write_reports};
  return &api;
}
