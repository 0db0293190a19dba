#include "bench/dataworker/ffmpeg_cli.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status/status_macros.h"

extern char** environ;

namespace vjepa::bench {
namespace {

namespace fs = std::filesystem;

std::string VideoCache() {
  const char* home = std::getenv("HOME");
  return absl::StrCat(home ? home : "/tmp", "/.cache/vjepa-train/videos");
}

}  // namespace

absl::StatusOr<std::pair<int, std::string>> RunCommand(const std::vector<std::string>& argv) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return absl::InternalError("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (rc != 0) {
    close(pipe_fds[0]);
    return absl::NotFoundError(absl::StrCat(argv[0], ": cannot start (", std::strerror(rc),
                                            "); is it installed? (scripts/setup.sh)"));
  }
  std::string output;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipe_fds[0], buf, sizeof(buf))) > 0) output.append(buf, n);
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), output);
}

absl::StatusOr<double> FfmpegDecodeCpuSeconds(const std::string& path, double fps,
                                              const std::vector<FrameRange>& ranges) {
  if (fps <= 0) return absl::InvalidArgumentError(absl::StrCat(path, ": unknown frame rate"));
  std::vector<std::string> argv = {"ffmpeg", "-hide_banner", "-nostdin", "-benchmark"};
  for (const auto& r : ranges) {
    // Half a frame inside each bound: the range's own frames, whatever the timestamp rounding.
    argv.insert(argv.end(), {"-threads", "1", "-ss", absl::StrFormat("%.6f", (r.first - 0.5) / fps),
                             "-to", absl::StrFormat("%.6f", (r.last + 0.5) / fps), "-i", path});
  }
  for (size_t i = 0; i < ranges.size(); ++i) {
    argv.insert(argv.end(), {"-map", absl::StrCat(i, ":v:0"), "-an", "-sn", "-threads", "1", "-f",
                             "null", "-"});
  }
  ASSIGN_OR_RETURN(auto result, RunCommand(argv));
  if (result.first != 0) {
    return absl::InternalError(absl::StrCat(
        "ffmpeg failed on ", path, ": ",
        result.second.substr(result.second.size() > 2000 ? result.second.size() - 2000 : 0)));
  }
  static const std::regex kBench(R"(bench: utime=([0-9.]+)s stime=([0-9.]+)s)");
  std::smatch m;
  if (!std::regex_search(result.second, m, kBench)) {
    return absl::InternalError(absl::StrCat("ffmpeg -benchmark printed no times for ", path));
  }
  return std::stod(m[1]) + std::stod(m[2]);
}

absl::StatusOr<std::vector<std::pair<std::string, std::vector<std::string>>>> GenerateDefaultInputs(
    const std::string& cache) {
  // Real footage (people walking; a cockatoo; a phone clip), re-timed to 30 fps without
  // duplicating frames and scaled to 640x360.
  const std::vector<std::string> sources = {
      "opencv-doc--vtest.avi", "python3-imageio--cockatoo.mp4", "node-opencv--motion.mov"};
  struct Encoding {
    std::string name;
    std::string ext;
    std::vector<std::string> args;
  };
  const std::vector<Encoding> encodings = {
      {"h264_360p_gop30",
       "mp4",
       {"-c:v", "libx264", "-preset", "medium", "-crf", "23", "-g", "30", "-keyint_min", "30",
        "-sc_threshold", "0", "-pix_fmt", "yuv420p"}},
      {"h264_360p_gop250",
       "mp4",
       {"-c:v", "libx264", "-preset", "medium", "-crf", "23", "-g", "250", "-pix_fmt", "yuv420p"}},
      {"vp9_360p_gop30",
       "webm",
       {"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M", "-g", "30",
        "-pix_fmt", "yuv420p"}},
  };
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const auto& e : encodings) {
    const std::string dir = absl::StrCat(cache, "/v1/", e.name);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return absl::InternalError(absl::StrCat(dir, ": ", ec.message()));
    std::vector<std::string> files;
    for (const auto& s : sources) {
      const std::string src = absl::StrCat(VideoCache(), "/", s);
      const std::string dst = absl::StrCat(dir, "/", fs::path(s).stem().string(), ".", e.ext);
      files.push_back(dst);
      if (fs::exists(dst)) continue;
      if (!fs::exists(src)) {
        return absl::NotFoundError(absl::StrCat(
            src, ": missing; run scripts/fetch_test_videos.sh first, or pass --input DIR"));
      }
      std::cerr << "vjepa-bench-dataworker: generating " << dst << "\n";
      const std::string tmp = absl::StrCat(dst, ".tmp.", e.ext);
      std::vector<std::string> argv = {"ffmpeg",
                                       "-hide_banner",
                                       "-nostdin",
                                       "-y",
                                       "-i",
                                       src,
                                       "-an",
                                       "-vf",
                                       "setpts=N/(30*TB),scale=640:360:flags=bicubic",
                                       "-r",
                                       "30"};
      argv.insert(argv.end(), e.args.begin(), e.args.end());
      argv.push_back(tmp);
      ASSIGN_OR_RETURN(auto result, RunCommand(argv));
      if (result.first != 0) {
        return absl::InternalError(
            absl::StrCat("ffmpeg could not make ", dst, ": ", result.second.substr(0, 2000)));
      }
      fs::rename(tmp, dst, ec);
      if (ec) return absl::InternalError(absl::StrCat(dst, ": ", ec.message()));
    }
    out.emplace_back(e.name, files);
  }
  return out;
}

}  // namespace vjepa::bench
