#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/status/status_matchers.h"
#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "opencv2/core.hpp"
#include "services/dataworker/video/bad_video.h"
#include "services/dataworker/video/frame_convert.h"
#include "services/dataworker/video/frame_index.h"
#include "services/dataworker/video/video_reader.h"

extern "C" {
#include <libavutil/frame.h>
#include <libavutil/md5.h>
#include <libavutil/pixdesc.h>
}

namespace vjepa::dataworker {
namespace {

using ::testing::HasSubstr;
using ::vjepa::testing::IsOk;
using ::vjepa::testing::ReadFile;
using ::vjepa::testing::ScratchDir;
using ::vjepa::testing::StatusIs;
using ::vjepa::testing::WriteFile;

// ---------------------------------------------------------------------------------------------
// Helpers: commands, the ffmpeg CLI as an independent reference, and frames through the reader.

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// Runs `command` through the shell, for at most a minute; returns its exit status and stdout.
std::pair<int, std::string> Shell(const std::string& command) {
  std::string output;
  FILE* pipe = popen(("timeout -k 5 60 " + command).c_str(), "r");
  if (pipe == nullptr) return {-1, ""};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) output.append(buf, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// Runs the ffmpeg CLI quietly with `args`; true on success.
bool Ffmpeg(const std::string& args) {
  const auto [rc, out] = Shell("ffmpeg -hide_banner -nostdin -v error -y " + args + " 2>&1");
  if (rc != 0) ADD_FAILURE() << "ffmpeg " << args << " failed:\n" << out;
  return rc == 0;
}

bool FfmpegHasEncoder(const std::string& name) {
  static std::map<std::string, bool>* cache = new std::map<std::string, bool>();
  auto it = cache->find(name);
  if (it != cache->end()) return it->second;
  const auto [rc, out] = Shell("ffmpeg -hide_banner -nostdin -encoders 2>/dev/null");
  bool found = false;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (words.size() >= 2 && words[1] == name) found = true;
  }
  (*cache)[name] = rc == 0 && found;
  return (*cache)[name];
}

// Video packets counted by ffprobe's own demux pass.
int64_t FfprobePacketCount(const std::string& path) {
  const auto [rc, out] = Shell(
      "ffprobe -v error -select_streams v:0 -count_packets -show_entries "
      "stream=nb_read_packets -of default=nw=1:nk=1 " +
      Quote(path));
  int64_t n = -1;
  if (rc != 0 || !absl::SimpleAtoi(absl::StripAsciiWhitespace(out), &n)) return -1;
  return n;
}

// The MD5 of every frame of the file's first video stream, decoded and converted to RGB24 by the
// ffmpeg CLI (autorotated, bilinear swscale, no frame dropped or repeated).
// `max_frames` > 0: only the first ones.
std::vector<std::string> CliFrameMd5s(const std::string& path, int64_t max_frames = 0) {
  const auto [rc, out] = Shell(absl::StrCat(
      "ffmpeg -hide_banner -nostdin -v error -threads 1 -i ", Quote(path),
      " -map 0:v:0 -fps_mode passthrough -sws_flags bilinear -pix_fmt rgb24 ",
      max_frames > 0 ? absl::StrCat("-frames:v ", max_frames, " ") : "", "-f framemd5 -"));
  std::vector<std::string> md5s;
  EXPECT_EQ(rc, 0) << out;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    if (line[0] == '#') continue;
    std::vector<absl::string_view> cols = absl::StrSplit(line, ',');
    md5s.emplace_back(absl::StripAsciiWhitespace(cols.back()));
  }
  return md5s;
}

std::string Md5(const cv::Mat& m) {
  const cv::Mat c = m.isContinuous() ? m : m.clone();
  uint8_t digest[16];
  av_md5_sum(digest, c.data, static_cast<int>(c.total() * c.elemSize()));
  std::string hex;
  for (uint8_t b : digest) absl::StrAppend(&hex, absl::Hex(b, absl::kZeroPad2));
  return hex;
}

bool SameBytes(const cv::Mat& a, const cv::Mat& b) {
  if (a.size() != b.size() || a.type() != b.type()) return false;
  for (int r = 0; r < a.rows; ++r) {
    if (std::memcmp(a.ptr(r), b.ptr(r), static_cast<size_t>(a.cols) * a.elemSize()) != 0) {
      return false;
    }
  }
  return true;
}

// Decodes `indices` and returns each sink call's (index, full frame in RGB).
absl::StatusOr<std::vector<std::pair<int64_t, cv::Mat>>> DecodeFull(
    VideoReader& reader, const std::vector<int64_t>& indices, DecodeStats* stats = nullptr) {
  std::vector<std::pair<int64_t, cv::Mat>> out;
  absl::Status s = reader.DecodeFrames(
      indices,
      [&](int64_t index, const FrameView& frame) -> absl::Status {
        cv::Mat rgb;
        absl::Status st = frame.CropToRgb(0, 0, frame.width(), frame.height(), &rgb);
        if (!st.ok()) return st;
        out.emplace_back(index, rgb.clone());
        return absl::OkStatus();
      },
      absl::InfiniteFuture(), stats);
  if (!s.ok()) return s;
  return out;
}

std::vector<int64_t> Linspace(int64_t first, int64_t last, int n) {
  std::vector<int64_t> v;
  for (int i = 0; i < n; ++i) {
    v.push_back(n == 1 ? first : first + (last - first) * i / (n - 1));
  }
  return v;
}

std::vector<int64_t> Strided(int64_t first, int n, int step, int64_t frames) {
  std::vector<int64_t> v;
  for (int i = 0; i < n; ++i) v.push_back(std::min(first + int64_t{i} * step, frames - 1));
  return v;
}

// Decodes each index set and checks every frame against the CLI's sequential decode, byte for
// byte.
void ExpectMatchesCli(const std::string& path, const std::vector<std::vector<int64_t>>& sets,
                      DecodeStats* total = nullptr, int64_t max_frames = 0) {
  const ReaderLimits limits;
  // One reader that indexed the file, one that reopened it from the cached index.
  FrameIndexCache cache;
  ASSERT_OK_AND_ASSIGN(auto first, VideoReader::Open(path, limits, &cache));
  ASSERT_OK_AND_ASSIGN(auto second, VideoReader::Open(path, limits, &cache));
  ASSERT_EQ(cache.hits(), 1);
  EXPECT_EQ(first->info().frames, second->info().frames);
  EXPECT_EQ(first->info().pixel_format, second->info().pixel_format);
  const std::vector<std::string> cli = CliFrameMd5s(path, max_frames);
  ASSERT_EQ(static_cast<int64_t>(cli.size()),
            max_frames > 0 ? std::min(max_frames, first->info().frames) : first->info().frames)
      << path;
  for (size_t k = 0; k < sets.size(); ++k) {
    const std::vector<int64_t>& set = sets[k];
    VideoReader& reader = k % 2 == 0 ? *first : *second;
    DecodeStats stats;
    ASSERT_OK_AND_ASSIGN(auto got, DecodeFull(reader, set, &stats));
    std::vector<int64_t> unique = set;
    unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
    ASSERT_EQ(got.size(), unique.size()) << path;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i].first, unique[i]);
      ASSERT_LT(unique[i], static_cast<int64_t>(cli.size()));
      EXPECT_EQ(Md5(got[i].second), cli[unique[i]])
          << path << ": frame " << unique[i] << " differs from the CLI's sequential decode";
    }
    if (total != nullptr) {
      total->frames_decoded += stats.frames_decoded;
      total->frames_skipped += stats.frames_skipped;
      total->seeks += stats.seeks;
      total->packets_sent += stats.packets_sent;
      total->frames_repeated += stats.frames_repeated;
    }
  }
}

std::string VideoCache() {
  if (const char* dir = std::getenv("VJEPA_TEST_VIDEOS")) return dir;
  const char* home = std::getenv("HOME");
  return absl::StrCat(home ? home : "/root", "/.cache/vjepa-train/videos");
}

std::string CachedVideo(const std::string& package, const std::string& basename) {
  return absl::StrCat(VideoCache(), "/", package, "--", basename);
}

struct ListedVideo {
  std::string file;
  std::string note;
};

std::vector<ListedVideo> ListedVideos() {
  std::vector<ListedVideo> out;
  const char* root = std::getenv("VJEPA_SOURCE_DIR");
  if (root == nullptr) {
    ADD_FAILURE() << "VJEPA_SOURCE_DIR is not set; run the test through ctest";
    return out;
  }
  std::ifstream in(absl::StrCat(root, "/tests/data/debian-videos.tsv"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cols = absl::StrSplit(line, '\t');
    if (cols.size() < 4) continue;
    const std::string base = std::filesystem::path(cols[1]).filename().string();
    out.push_back({CachedVideo(cols[0], base), cols[3]});
  }
  return out;
}

#define SKIP_WITHOUT_VIDEOS()                                                                  \
  if (!std::filesystem::exists(VideoCache())) {                                                \
    GTEST_SKIP() << "no test videos in " << VideoCache() << " (scripts/fetch_test_videos.sh)"; \
  }

std::optional<BadVideoReason> ReasonOf(const absl::Status& s) { return BadVideoReasonOf(s); }

// ---------------------------------------------------------------------------------------------
// Bad-video reasons.

TEST(BadVideoTest, StatusCarriesReasonCodeAndMessage) {
  const absl::Status s = BadVideo(BadVideoReason::kTruncated, "a/b.mp4", "ends at 10");
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition, "a/b.mp4: truncated: ends at 10"));
  EXPECT_EQ(BadVideoReasonOf(s), BadVideoReason::kTruncated);
  EXPECT_EQ(BadVideo(BadVideoReason::kMissing, "x", "").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(BadVideo(BadVideoReason::kPathRefused, "x", "").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(BadVideoReasonOf(absl::DeadlineExceededError("slow")), std::nullopt);
  EXPECT_EQ(BadVideoReasonOf(absl::OkStatus()), std::nullopt);
  std::set<std::string_view> names;
  for (BadVideoReason r : AllBadVideoReasons()) {
    names.insert(BadVideoReasonName(r));
    EXPECT_EQ(BadVideoReasonOf(BadVideo(r, "p", "d")), r);
  }
  EXPECT_EQ(names, (std::set<std::string_view>{"missing", "empty", "truncated", "not_a_container",
                                               "no_video_stream", "unsupported_codec", "too_large",
                                               "decode_error", "no_frames", "path_refused"}));
}

// ---------------------------------------------------------------------------------------------
// The frame index.

IndexedPacket Packet(int64_t pts, int64_t dts, bool key, int64_t pos = -1, int32_t size = 10) {
  IndexedPacket p;
  p.pts = pts;
  p.dts = dts;
  p.key = key;
  p.pos = pos;
  p.size = size;
  p.frame = 0;
  return p;
}

TEST(FrameIndexTest, PresentationOrderAndStartKeys) {
  // Decode order I0 P3 B1 B2 | I4(open GOP) B... : pts below.
  std::vector<IndexedPacket> pk = {
      Packet(0, -1, true, 100), Packet(3, 0, false, 200), Packet(1, 1, false, 300),
      Packet(2, 2, false, 400), Packet(6, 3, true, 500),  Packet(4, 4, false, 600),
      Packet(5, 5, false, 700), Packet(7, 6, false, 800),
  };
  const FrameIndex index = BuildFrameIndex(0, 1, 30, pk, 0);
  ASSERT_EQ(index.frames(), 8);
  EXPECT_TRUE(index.has_timestamps);
  EXPECT_EQ(index.timestamps, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(index.decode_pos, (std::vector<int32_t>{0, 2, 3, 1, 5, 6, 4, 7}));
  // Frames 4 and 5 are presented before the key frame (6) that precedes them in decode order:
  // they decode from the first key frame.
  EXPECT_EQ(index.start, (std::vector<int32_t>{0, 0, 0, 0, 0, 0, 4, 4}));
  EXPECT_EQ(index.key_frames, (std::vector<int64_t>{0, 6}));
  EXPECT_EQ(index.FindByPos(500, 10), 4);
  EXPECT_EQ(index.FindByPos(500, 11), -1);
  EXPECT_EQ(index.FindByTimestamp(5, 10), 6);
  EXPECT_NEAR(index.duration_s, 8.0 / 30, 1e-9);
}

TEST(FrameIndexTest, DiscardedPacketsAndMissingTimestamps) {
  std::vector<IndexedPacket> pk = {Packet(-2, -2, true), Packet(-1, -1, false), Packet(0, 0, false),
                                   Packet(1, 1, false)};
  pk[0].frame = -1;  // discarded (edit list), still a key frame to decode from
  pk[1].frame = -1;
  FrameIndex index = BuildFrameIndex(0, 1, 10, pk, 0);
  ASSERT_EQ(index.frames(), 2);
  EXPECT_EQ(index.decode_pos, (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(index.start, (std::vector<int32_t>{0, 0}));
  EXPECT_TRUE(index.key_frames.empty());

  // Without timestamps frames follow decode order; one frame lasts the fallback.
  std::vector<IndexedPacket> none = {Packet(kNoTimestamp, kNoTimestamp, true, 5),
                                     Packet(kNoTimestamp, kNoTimestamp, false, 5),
                                     Packet(kNoTimestamp, kNoTimestamp, true, 9)};
  index = BuildFrameIndex(1, 1, 10, none, 0.5);
  EXPECT_FALSE(index.has_timestamps);
  EXPECT_EQ(index.decode_pos, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(index.start, (std::vector<int32_t>{0, 0, 2}));
  EXPECT_EQ(index.FindByPos(5, 10), -1);  // two packets at offset 5: ambiguous
  EXPECT_EQ(index.FindByPos(9, 10), 2);
  EXPECT_DOUBLE_EQ(index.duration_s, 1.5);
}

TEST(FrameIndexTest, TimestampsThatRestartStartANewStretch) {
  // Two clips one after the other, each with B-frames (decode order I P B B), both from 0.
  std::vector<IndexedPacket> pk;
  for (int clip = 0; clip < 2; ++clip) {
    for (int64_t pts : {0, 3, 1, 2, 6, 4, 5}) pk.push_back(Packet(pts, -1, pts == 0));
  }
  const FrameIndex index = BuildFrameIndex(0, 1, 10, pk, 0);
  ASSERT_EQ(index.frames(), 14);
  EXPECT_EQ(index.decode_pos, (std::vector<int32_t>{0, 2, 3, 1, 5, 6, 4, 7, 9, 10, 8, 12, 13, 11}));
  EXPECT_EQ(index.start, (std::vector<int32_t>{0, 0, 0, 0, 0, 0, 0, 7, 7, 7, 7, 7, 7, 7}));
  EXPECT_NEAR(index.duration_s, 1.4, 1e-9);     // two spans of 0.6 s, plus a frame each
  EXPECT_EQ(index.FindByTimestamp(3, 10), -1);  // in both clips
}

TEST(FrameIndexCacheTest, LeastRecentlyUsedEntriesGo) {
  FrameIndexCache cache(2);
  auto index = [](int stream) {
    auto i = std::make_shared<FrameIndex>();
    i->stream_index = stream;
    return std::shared_ptr<const FrameIndex>(i);
  };
  const FileVersion a{"/a", 1, 2}, b{"/b", 1, 2}, c{"/c", 1, 2}, a2{"/a", 1, 3};
  cache.Insert(a, index(1));
  cache.Insert(b, index(2));
  ASSERT_NE(cache.Lookup(a), nullptr);  // a is now the most recent
  cache.Insert(c, index(3));            // evicts b
  EXPECT_EQ(cache.Lookup(b), nullptr);
  EXPECT_EQ(cache.Lookup(a)->stream_index, 1);
  EXPECT_EQ(cache.Lookup(c)->stream_index, 3);
  EXPECT_EQ(cache.Lookup(a2), nullptr);  // another version of /a
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.hits(), 3);
  EXPECT_EQ(cache.misses(), 2);
}

TEST(FrameIndexCacheTest, BytesAreBounded) {
  auto index = [](int frames) {
    std::vector<IndexedPacket> pk;
    for (int i = 0; i < frames; ++i) pk.push_back(Packet(i, i, i % 10 == 0, 100 * i));
    return std::make_shared<const FrameIndex>(BuildFrameIndex(0, 1, 25, pk, 0));
  };
  const size_t one = index(1000)->MemoryBytes();
  FrameIndexCache cache(100, 3 * one);
  for (int i = 0; i < 5; ++i) cache.Insert(FileVersion{absl::StrCat("/", i), 1, 1}, index(1000));
  EXPECT_EQ(cache.size(), 2u);  // a third would pass the bound with the keys' bytes
  EXPECT_LE(cache.bytes(), 3 * one);
  EXPECT_NE(cache.Lookup(FileVersion{"/4", 1, 1}), nullptr);
  EXPECT_EQ(cache.Lookup(FileVersion{"/2", 1, 1}), nullptr);
  // One index over the bound alone is still kept (the latest).
  FrameIndexCache tiny(100, 10);
  tiny.Insert(FileVersion{"/big", 1, 1}, index(1000));
  EXPECT_EQ(tiny.size(), 1u);
}

TEST(FrameIndexCacheTest, ConcurrentUse) {
  FrameIndexCache cache(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 500; ++i) {
        const FileVersion f{absl::StrCat("/v", (i * 7 + t) % 16), i % 3, 0};
        if (auto hit = cache.Lookup(f)) {
          EXPECT_EQ(hit->stream_index, (i * 7 + t) % 16);
        } else {
          auto idx = std::make_shared<FrameIndex>();
          idx->stream_index = (i * 7 + t) % 16;
          cache.Insert(f, idx);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(cache.size(), 8u);
  EXPECT_EQ(cache.hits() + cache.misses(), 2000);
}

// ---------------------------------------------------------------------------------------------
// The Debian clips.

TEST(RealVideosTest, EveryListedClipDecodesOrFailsWithItsReason) {
  SKIP_WITHOUT_VIDEOS();
  const std::map<std::string, BadVideoReason> bad = {
      {CachedVideo("golang-github-rclone-rclone-dev", "video.mp4"), BadVideoReason::kNoVideoStream},
      {CachedVideo("sfront", "sine.mp4"), BadVideoReason::kNotAContainer},
      {CachedVideo("linphone-common", "silence.mkv"), BadVideoReason::kNoVideoStream},
  };
  const std::vector<ListedVideo> videos = ListedVideos();
  ASSERT_GE(videos.size(), 20u);
  int bad_seen = 0;
  for (const ListedVideo& v : videos) {
    SCOPED_TRACE(v.file);
    ASSERT_TRUE(std::filesystem::exists(v.file)) << "run scripts/fetch_test_videos.sh";
    auto reader = VideoReader::Open(v.file, ReaderLimits());
    if (auto it = bad.find(v.file); it != bad.end()) {
      ++bad_seen;
      EXPECT_EQ(ReasonOf(reader.status()), it->second) << reader.status();
      continue;
    }
    ASSERT_THAT(reader, IsOk());
    const VideoInfo& info = (*reader)->info();
    EXPECT_GT(info.width, 0);
    EXPECT_GT(info.height, 0);
    EXPECT_GT(info.frames, 0);
    EXPECT_GT(info.key_frames, 0);
    EXPECT_FALSE(info.codec.empty());
    // A 16-frame clip spread over the video, converted in a box.
    const std::vector<int64_t> indices = Linspace(0, info.frames - 1, 16);
    std::vector<int64_t> seen;
    const int bw = std::max(1, info.width / 2), bh = std::max(1, info.height / 3);
    absl::Status s = (*reader)->DecodeFrames(
        indices,
        [&](int64_t index, const FrameView& frame) -> absl::Status {
          EXPECT_EQ(frame.width(), info.width);
          EXPECT_EQ(frame.height(), info.height);
          cv::Mat rgb;
          absl::Status st = frame.CropToRgb(info.width - bw, 0, bw, bh, &rgb);
          EXPECT_EQ(rgb.cols, bw);
          EXPECT_EQ(rgb.rows, bh);
          EXPECT_EQ(rgb.type(), CV_8UC3);
          seen.push_back(index);
          return st;
        },
        absl::Now() + absl::Seconds(60));
    EXPECT_THAT(s, IsOk());
    std::vector<int64_t> unique = indices;
    unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
    EXPECT_EQ(seen, unique);
  }
  EXPECT_EQ(bad_seen, 3);
}

TEST(RealVideosTest, FrameCountsMatchAnIndependentPacketCount) {
  SKIP_WITHOUT_VIDEOS();
  for (const std::string& file :
       {CachedVideo("opencv-doc", "vtest.avi"), CachedVideo("opencv-doc", "tree.avi"),
        CachedVideo("python3-imageio", "cockatoo.mp4"),
        CachedVideo("libgtkmm-4.0-doc", "gtk-logo.webm"),
        CachedVideo("golang-github-gabriel-vasile-mimetype-dev", "ogg.ogv"),
        CachedVideo("golang-github-gabriel-vasile-mimetype-dev", "asf.asf"),
        CachedVideo("renpy-demo", "oa4_launch.webm")}) {
    SCOPED_TRACE(file);
    ASSERT_OK_AND_ASSIGN(auto reader, VideoReader::Open(file, ReaderLimits()));
    const int64_t expected = FfprobePacketCount(file);
    ASSERT_GT(expected, 0);
    EXPECT_EQ(reader->info().frames, expected);
  }
}

struct RealClip {
  std::string name;
  std::string package;
  std::string basename;
  int64_t max_frames = 0;  // compare within the first ones (0: all)
};

class RealClipTest : public ::testing::TestWithParam<RealClip> {};

TEST_P(RealClipTest, SeekAndSkipMatchSequentialDecode) {
  SKIP_WITHOUT_VIDEOS();
  const RealClip& c = GetParam();
  const std::string file = CachedVideo(c.package, c.basename);
  ASSERT_OK_AND_ASSIGN(auto reader, VideoReader::Open(file, ReaderLimits()));
  const int64_t n =
      c.max_frames > 0 ? std::min(c.max_frames, reader->info().frames) : reader->info().frames;
  DecodeStats total;
  // The second set goes to a fresh reader: it starts at the last key frame.
  ExpectMatchesCli(file,
                   {Linspace(0, n - 1, 16),
                    {n - 1},
                    Strided(n / 3, 16, 4, n),
                    Strided(1, 16, 2, n),
                    {0, 0, 1},
                    Strided(n / 2, 8, 1, n)},
                   &total, c.max_frames);
  EXPECT_EQ(total.frames_repeated, 0);
  if (c.name == "h264_bframes") {
    EXPECT_GT(total.frames_skipped, 0);
  }
  if (reader->info().key_frames > 2) {
    EXPECT_GT(total.seeks, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Debian, RealClipTest,
    ::testing::Values(RealClip{"h264_bframes", "golang-github-gabriel-vasile-mimetype-dev",
                               "mov.mov"},
                      // H.264 4:4:4 whose later IDRs need the x264 SEI of the first packet.
                      RealClip{"h264_444", "python3-imageio", "cockatoo.mp4", 100},
                      RealClip{"vp9", "libgtkmm-4.0-doc", "gtk-logo.webm"},
                      RealClip{"theora", "golang-github-gabriel-vasile-mimetype-dev", "ogg.ogv"},
                      RealClip{"cinepak_rgb24", "opencv-doc", "tree.avi"},
                      // Two clips in one: the timestamps restart after frame 56.
                      RealClip{"mpeg4_restarting_timestamps",
                               "golang-github-gabriel-vasile-mimetype-dev", "mkv.mkv"},
                      RealClip{"short_h264", "python3-imageio", "realshort.mp4"}),
    [](const ::testing::TestParamInfo<RealClip>& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------
// Generated files.

// A test pattern of `frames` frames at `size` (WxH) and `rate`, encoded with `codec_args` into
// `path`.
bool Generate(const std::string& path, const std::string& size, int frames,
              const std::string& codec_args, int rate = 25) {
  return Ffmpeg(absl::StrCat("-f lavfi -i testsrc2=size=", size, ":rate=", rate, " -frames:v ",
                             frames, " ", codec_args, " ", Quote(path)));
}

int64_t FileSize(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  return ec ? -1 : static_cast<int64_t>(n);
}

// The first `bytes` bytes of `from` as `to`.
void CopyPrefix(const std::string& from, const std::string& to, int64_t bytes) {
  std::ifstream in(from, std::ios::binary);
  std::string data(static_cast<size_t>(bytes), '\0');
  in.read(data.data(), bytes);
  std::ofstream out(to, std::ios::binary | std::ios::trunc);
  out.write(data.data(), in.gcount());
}

struct CodecCase {
  std::string name;
  std::string encoder;  // skipped when the CLI lacks it
  std::string args;
  std::string ext;
  std::string size = "128x96";
  int frames = 40;
};

class CodecTest : public ::testing::TestWithParam<CodecCase> {};

TEST_P(CodecTest, FramesMatchTheCliAtEveryIndexSet) {
  const CodecCase& c = GetParam();
  if (!FfmpegHasEncoder(c.encoder)) GTEST_SKIP() << "ffmpeg has no " << c.encoder << " encoder";
  ScratchDir dir;
  const std::string file = dir.File("v." + c.ext);
  ASSERT_TRUE(Generate(file, c.size, c.frames, c.args));
  ASSERT_OK_AND_ASSIGN(auto reader, VideoReader::Open(file, ReaderLimits()));
  const int64_t n = reader->info().frames;
  EXPECT_EQ(n, c.frames);
  EXPECT_EQ(n, FfprobePacketCount(file));
  ExpectMatchesCli(file, {Linspace(0, n - 1, 16),
                          Strided(n / 3, 8, 4, n),
                          {n - 1},
                          {0},
                          Strided(n / 2 - 3, 8, 1, n),
                          Strided(5, 6, 7, n)});
}

INSTANTIATE_TEST_SUITE_P(
    Generated, CodecTest,
    ::testing::Values(
        CodecCase{"h264_bframes", "libx264",
                  "-c:v libx264 -preset ultrafast -bf 3 -g 12 -pix_fmt yuv420p", "mp4"},
        CodecCase{"h264_long_gop", "libx264",
                  "-c:v libx264 -preset veryfast -bf 3 -g 300 -keyint_min 300 -sc_threshold 0 "
                  "-pix_fmt yuv420p",
                  "mkv", "96x64", 120},
        CodecCase{"h264_10bit", "libx264",
                  "-c:v libx264 -preset ultrafast -bf 2 -g 10 -pix_fmt yuv420p10le", "mp4", "80x48",
                  24},
        CodecCase{"hevc", "libx265",
                  "-c:v libx265 -preset ultrafast -x265-params "
                  "log-level=error:keyint=12:bframes=3 -pix_fmt yuv420p",
                  "mp4"},
        CodecCase{"av1", "libaom-av1",
                  "-c:v libaom-av1 -cpu-used 8 -usage realtime -g 12 -threads 1 -pix_fmt yuv420p",
                  "mkv", "64x48", 24},
        CodecCase{"mpeg2", "mpeg2video", "-c:v mpeg2video -g 12 -bf 2 -q:v 4", "mpg"},
        CodecCase{"mpeg4", "mpeg4", "-c:v mpeg4 -g 12 -bf 2 -q:v 4", "mkv"},
        CodecCase{"mjpeg_odd_size", "mjpeg", "-c:v mjpeg -q:v 4", "avi", "83x61", 20},
        CodecCase{"vp8_altref", "libvpx",
                  "-c:v libvpx -auto-alt-ref 1 -lag-in-frames 16 -g 30 -b:v 200k", "webm"},
        CodecCase{"vp9", "libvpx-vp9",
                  "-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -g 12 -b:v 200k", "webm"},
        CodecCase{"ffv1_yuv420p_odd", "ffv1", "-c:v ffv1 -pix_fmt yuv420p", "mkv", "83x61", 12},
        CodecCase{"ffv1_yuv422p", "ffv1", "-c:v ffv1 -pix_fmt yuv422p", "mkv", "90x50", 12},
        CodecCase{"ffv1_yuv444p", "ffv1", "-c:v ffv1 -pix_fmt yuv444p", "mkv", "77x45", 12},
        CodecCase{"ffv1_yuv420p10", "ffv1", "-c:v ffv1 -pix_fmt yuv420p10le", "mkv", "70x42", 12},
        CodecCase{"ffv1_gray", "ffv1", "-c:v ffv1 -pix_fmt gray", "mkv", "66x40", 12},
        CodecCase{"ffv1_bgr0", "ffv1", "-c:v ffv1 -pix_fmt bgr0", "mkv", "66x40", 12}),
    [](const ::testing::TestParamInfo<CodecCase>& info) { return info.param.name; });

TEST(GeneratedVideoTest, RotationIsApplied) {
  if (!FfmpegHasEncoder("libx264")) GTEST_SKIP() << "ffmpeg has no libx264 encoder";
  ScratchDir dir;
  const std::string plain = dir.File("plain.mp4");
  ASSERT_TRUE(Generate(plain, "96x64", 10, "-c:v libx264 -preset ultrafast -pix_fmt yuv420p"));
  ASSERT_OK_AND_ASSIGN(auto unrotated, VideoReader::Open(plain, ReaderLimits()));
  EXPECT_EQ(unrotated->info().rotation, 0);
  ASSERT_OK_AND_ASSIGN(auto base, DecodeFull(*unrotated, {3}));
  for (int tag : {90, 180, 270}) {
    SCOPED_TRACE(tag);
    const std::string file = dir.File(absl::StrCat("r", tag, ".mp4"));
    ASSERT_TRUE(Ffmpeg(absl::StrCat("-i ", Quote(plain), " -c copy -metadata:s:v:0 rotate=", tag,
                                    " ", Quote(file))));
    ASSERT_OK_AND_ASSIGN(auto reader, VideoReader::Open(file, ReaderLimits()));
    const VideoInfo& info = reader->info();
    EXPECT_NE(info.rotation, 0);
    if (info.rotation == 180) {
      EXPECT_EQ(info.width, 96);
      EXPECT_EQ(info.height, 64);
    } else {
      EXPECT_EQ(info.width, 64);
      EXPECT_EQ(info.height, 96);
    }
    // The pixels: the unrotated frame turned by the reported rotation, and the CLI's autorotated
    // output.
    ASSERT_OK_AND_ASSIGN(auto got, DecodeFull(*reader, {3}));
    cv::Mat turned;
    cv::rotate(base[0].second, turned,
               info.rotation == 90    ? cv::ROTATE_90_CLOCKWISE
               : info.rotation == 180 ? cv::ROTATE_180
                                      : cv::ROTATE_90_COUNTERCLOCKWISE);
    EXPECT_TRUE(SameBytes(got[0].second, turned));
    ExpectMatchesCli(file, {{0, 3, 9}});
    // Boxes in display coordinates.
    absl::Status s = reader->DecodeFrames(
        std::vector<int64_t>{3},
        [&](int64_t, const FrameView& frame) -> absl::Status {
          for (const cv::Rect box : {cv::Rect(0, 0, 20, 30), cv::Rect(5, 7, 33, 41),
                                     cv::Rect(info.width - 9, info.height - 13, 9, 13)}) {
            cv::Mat crop;
            absl::Status st = frame.CropToRgb(box.x, box.y, box.width, box.height, &crop);
            if (!st.ok()) return st;
            EXPECT_TRUE(SameBytes(crop, turned(box))) << box;
          }
          return absl::OkStatus();
        },
        absl::InfiniteFuture());
    EXPECT_OK(s);
  }
}

// Crops of every pixel format the reader meets equal the same box of the converted full frame.
TEST(GeneratedVideoTest, CropEqualsTheFullFrameConvertedThenCropped) {
  ScratchDir dir;
  std::vector<std::string> files;
  for (const auto& [fmt, size] :
       std::vector<std::pair<std::string, std::string>>{{"yuv420p", "83x61"},
                                                        {"yuv420p", "100x64"},
                                                        {"yuv422p", "91x47"},
                                                        {"yuv444p", "70x41"},
                                                        {"yuv420p10le", "75x45"},
                                                        {"yuv410p", "84x44"},
                                                        {"nv12", "86x50"},
                                                        {"yuyv422", "82x40"},
                                                        {"gray", "71x33"},
                                                        {"rgb24", "65x39"},
                                                        {"pal8", "64x38"},
                                                        {"yuvj420p", "69x43"}}) {
    const std::string file = dir.File(absl::StrCat(fmt, "_", size, ".nut"));
    ASSERT_TRUE(Generate(file, size, 1, absl::StrCat("-c:v rawvideo -pix_fmt ", fmt)));
    files.push_back(file);
  }
  if (std::filesystem::exists(VideoCache())) {
    files.push_back(CachedVideo("python3-imageio", "cockatoo.mp4"));  // yuv444p
    files.push_back(CachedVideo("opencv-doc", "tree.avi"));           // rgb24 (cinepak)
  }
  std::mt19937 rng(7);
  for (const std::string& file : files) {
    SCOPED_TRACE(file);
    ASSERT_OK_AND_ASSIGN(auto reader, VideoReader::Open(file, ReaderLimits()));
    const int w = reader->info().width, h = reader->info().height;
    absl::Status s = reader->DecodeFrames(
        std::vector<int64_t>{0},
        [&](int64_t, const FrameView& frame) -> absl::Status {
          cv::Mat full;
          absl::Status st = frame.CropToRgb(0, 0, w, h, &full);
          if (!st.ok()) return st;
          full = full.clone();
          for (int i = 0; i < 150; ++i) {
            const int bw = 1 + static_cast<int>(rng() % w), bh = 1 + static_cast<int>(rng() % h);
            const int x = static_cast<int>(rng() % (w - bw + 1));
            const int y = static_cast<int>(rng() % (h - bh + 1));
            cv::Mat crop;
            st = frame.CropToRgb(x, y, bw, bh, &crop);
            if (!st.ok()) return st;
            EXPECT_TRUE(SameBytes(crop, full(cv::Rect(x, y, bw, bh))))
                << "box " << x << "," << y << " " << bw << "x" << bh;
          }
          cv::Mat bad;
          EXPECT_THAT(frame.CropToRgb(w - 1, 0, 2, 1, &bad),
                      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside")));
          return absl::OkStatus();
        },
        absl::InfiniteFuture());
    EXPECT_OK(s);
  }
}

// Patches every occurrence of `marker` followed by `skip` bytes with `value` (big-endian bytes).
int Patch(std::string* data, const std::string& marker, size_t skip, const std::string& value) {
  int n = 0;
  for (size_t at = data->find(marker); at != std::string::npos; at = data->find(marker, at + 1)) {
    if (at + marker.size() + skip + value.size() > data->size()) break;
    data->replace(at + marker.size() + skip, value.size(), value);
    ++n;
  }
  return n;
}

double FfprobeDuration(const std::string& path) {
  const auto [rc, out] =
      Shell("ffprobe -v error -show_entries format=duration -of csv=p=0 " + Quote(path));
  double d = -1;
  if (rc != 0 || !absl::SimpleAtod(absl::StripAsciiWhitespace(out), &d)) return -1;
  return d;
}

TEST(GeneratedVideoTest, ContainerDurationIsNotTrusted) {
  if (!FfmpegHasEncoder("libx264")) GTEST_SKIP() << "ffmpeg has no libx264 encoder";
  ScratchDir dir;
  // MP4: the movie and media headers claim 0x7fff0000 ticks (version-0 mvhd/mdhd: 4 bytes of
  // version+flags, creation, modification and timescale before the duration).
  const std::string mp4 = dir.File("lie.mp4");
  ASSERT_TRUE(Generate(mp4, "64x48", 30, "-c:v libx264 -preset ultrafast -pix_fmt yuv420p"));
  std::string data = ReadFile(mp4);
  const std::string big("\x7f\xff\x00\x00", 4);
  ASSERT_EQ(Patch(&data, "mvhd", 16, big), 1);
  ASSERT_GE(Patch(&data, "mdhd", 16, big), 1);
  WriteFile(mp4, data);
  // Matroska: the segment's Duration element (ID 0x4489, 8-byte float) says 10^9 ms.
  const std::string mkv = dir.File("lie.mkv");
  ASSERT_TRUE(Generate(mkv, "64x48", 30, "-c:v libx264 -preset ultrafast -pix_fmt yuv420p"));
  data = ReadFile(mkv);
  ASSERT_EQ(Patch(&data, std::string("\x44\x89\x88", 3), 0,
                  std::string("\x41\xcd\xcd\x65\x00\x00\x00\x00", 8)),
            1);
  WriteFile(mkv, data);
  for (const std::string& file : {mp4, mkv}) {
    SCOPED_TRACE(file);
    EXPECT_GT(FfprobeDuration(file), 1000);  // the lie is visible to ffprobe
    ASSERT_OK_AND_ASSIGN(auto reader, VideoReader::Open(file, ReaderLimits()));
    EXPECT_EQ(reader->info().frames, 30);
    EXPECT_NEAR(reader->info().duration_s, 30 / 25.0, 1e-6);
    EXPECT_NEAR(reader->info().fps, 25, 1e-6);
    ExpectMatchesCli(file, {{0, 10, 29}});
  }
}

TEST(GeneratedVideoTest, VariableFrameRate) {
  if (!FfmpegHasEncoder("libx264")) GTEST_SKIP() << "ffmpeg has no libx264 encoder";
  ScratchDir dir;
  const std::string file = dir.File("vfr.mkv");
  // Frames 0..19 a 25th of a second apart, then a fifth, then two 25ths.
  ASSERT_TRUE(Ffmpeg(absl::StrCat(
      "-f lavfi -i testsrc2=size=64x48:rate=25 -frames:v 60 ",
      "-vf \"setpts='(if(lt(N,20),N,if(lt(N,40),20+(N-20)*5,120+(N-40)*2)))/(25*TB)'\" ",
      "-fps_mode passthrough -c:v libx264 -preset ultrafast -bf 2 -g 15 ", Quote(file))));
  ASSERT_OK_AND_ASSIGN(auto reader, VideoReader::Open(file, ReaderLimits()));
  EXPECT_EQ(reader->info().frames, 60);
  EXPECT_EQ(FfprobePacketCount(file), 60);
  EXPECT_NEAR(reader->info().duration_s, 158.0 / 25 * 60 / 59, 1e-6);
  ExpectMatchesCli(file, {Linspace(0, 59, 16), Strided(15, 16, 2, 60), {25, 26, 45}});
}

// A copy cut mid-GOP: the first packets reference pictures that are not there.
TEST(GeneratedVideoTest, PacketsBeforeTheFirstKeyFrameRepeatTheFirstPicture) {
  if (!FfmpegHasEncoder("libx264")) GTEST_SKIP() << "ffmpeg has no libx264 encoder";
  ScratchDir dir;
  const std::string src = dir.File("src.mkv"), cut = dir.File("cut.mkv");
  ASSERT_TRUE(Generate(src, "64x48", 40, "-c:v libx264 -preset ultrafast -bf 0 -g 10"));
  ASSERT_TRUE(Ffmpeg(absl::StrCat("-i ", Quote(src), " -ss 0.2 -c copy -copyinkf ", Quote(cut))));
  ASSERT_OK_AND_ASSIGN(auto reader, VideoReader::Open(cut, ReaderLimits()));
  const int64_t n = reader->info().frames;
  EXPECT_EQ(n, FfprobePacketCount(cut));
  ASSERT_GT(n, 10);
  DecodeStats stats;
  ASSERT_OK_AND_ASSIGN(auto all, DecodeFull(*reader, Linspace(0, n - 1, n), &stats));
  ASSERT_EQ(static_cast<int64_t>(all.size()), n);
  EXPECT_GT(stats.frames_repeated, 0);
  // The CLI drops the undecodable leading packets; every frame we return is one of its frames,
  // and the rest are its frames in order.
  const std::vector<std::string> cli = CliFrameMd5s(cut);
  ASSERT_EQ(static_cast<int64_t>(cli.size()), n - stats.frames_repeated);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = std::max<int64_t>(0, i - stats.frames_repeated);
    EXPECT_EQ(Md5(all[i].second), cli[j]) << "frame " << i;
  }
  // A clip of the leading frames alone decodes to the same pictures.
  ASSERT_OK_AND_ASSIGN(auto lead, DecodeFull(*reader, {0, 1}));
  EXPECT_TRUE(SameBytes(lead[0].second, all[0].second));
}

TEST(GeneratedVideoTest, TruncatedFilesFailCleanlyOrDecodeCorrectly) {
  if (!FfmpegHasEncoder("libx264")) GTEST_SKIP() << "ffmpeg has no libx264 encoder";
  ScratchDir dir;
  const std::string x264 = "-c:v libx264 -preset ultrafast -bf 2 -g 8 -pix_fmt yuv420p";
  const std::vector<std::pair<std::string, std::string>> sources = {
      {"faststart.mp4", x264 + " -movflags +faststart"},
      {"moov_last.mp4", x264},
      {"v.mkv", x264},
      {"v.webm", "-c:v libvpx -g 8 -b:v 300k"},
      {"v.avi", "-c:v mjpeg -q:v 4"},
      {"v.ts", x264},
  };
  const std::set<BadVideoReason> open_reasons = {
      BadVideoReason::kTruncated, BadVideoReason::kNotAContainer, BadVideoReason::kNoVideoStream,
      BadVideoReason::kNoFrames, BadVideoReason::kDecodeError};
  for (const auto& [name, args] : sources) {
    const std::string src = dir.File(name);
    ASSERT_TRUE(Generate(src, "96x64", 30, args));
    const std::vector<std::string> cli = CliFrameMd5s(src);
    ASSERT_EQ(cli.size(), 30u);
    const int64_t size = FileSize(src);
    for (int64_t cut : {int64_t{16}, size / 50, size / 3, size * 2 / 3, size - 7}) {
      SCOPED_TRACE(absl::StrCat(name, " cut at ", cut, " of ", size));
      const std::string file = dir.File("cut_" + name);
      CopyPrefix(src, file, cut);
      auto reader = VideoReader::Open(file, ReaderLimits());
      if (!reader.ok()) {
        ASSERT_TRUE(ReasonOf(reader.status()).has_value()) << reader.status();
        EXPECT_TRUE(open_reasons.count(*ReasonOf(reader.status()))) << reader.status();
        if (name == "faststart.mp4" || name == "moov_last.mp4") {
          EXPECT_EQ(ReasonOf(reader.status()), BadVideoReason::kTruncated) << reader.status();
        }
        continue;
      }
      // The index holds only what the file still has: decoding every indexed frame either gives
      // the original's frames or fails with a reason.
      const int64_t n = (*reader)->info().frames;
      ASSERT_LE(n, 30);
      EXPECT_NE(name, "faststart.mp4") << "the sample table points past the end";
      auto all = DecodeFull(**reader, Linspace(0, n - 1, static_cast<int>(n)));
      if (!all.ok()) {
        const auto reason = ReasonOf(all.status());
        EXPECT_TRUE(reason == BadVideoReason::kTruncated || reason == BadVideoReason::kDecodeError)
            << all.status();
        continue;
      }
      ASSERT_EQ(static_cast<int64_t>(all->size()), n);
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_EQ(Md5((*all)[i].second), cli[i]) << "frame " << i << " of " << n;
      }
    }
  }
}

TEST(BadInputTest, MissingEmptyTextAndDirectory) {
  ScratchDir dir;
  auto missing = VideoReader::Open(dir.File("nope.mp4"), ReaderLimits());
  EXPECT_EQ(ReasonOf(missing.status()), BadVideoReason::kMissing);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("nope.mp4: missing"));

  dir.Write("empty.mp4", "");
  EXPECT_EQ(ReasonOf(VideoReader::Open(dir.File("empty.mp4"), ReaderLimits()).status()),
            BadVideoReason::kEmpty);

  for (const std::string name : {"text.mp4", "text.mkv", "text.txt", "text.avi"}) {
    dir.Write(name, "just some words\nin a text file\nthat is not a video at all\n");
    EXPECT_EQ(ReasonOf(VideoReader::Open(dir.File(name), ReaderLimits()).status()),
              BadVideoReason::kNotAContainer)
        << name;
  }
  std::filesystem::create_directory(dir.File("folder.mp4"));
  EXPECT_EQ(ReasonOf(VideoReader::Open(dir.File("folder.mp4"), ReaderLimits()).status()),
            BadVideoReason::kNotAContainer);
}

TEST(BadInputTest, LimitsMakeTooLarge) {
  ScratchDir dir;
  const std::string file = dir.File("v.mkv");
  ASSERT_TRUE(Generate(file, "96x64", 20, "-c:v mjpeg"));
  ReaderLimits limits;
  limits.max_width = 64;
  EXPECT_EQ(ReasonOf(VideoReader::Open(file, limits).status()), BadVideoReason::kTooLarge);
  limits = ReaderLimits();
  limits.max_height = 32;
  EXPECT_EQ(ReasonOf(VideoReader::Open(file, limits).status()), BadVideoReason::kTooLarge);
  limits = ReaderLimits();
  limits.max_frames = 19;
  EXPECT_EQ(ReasonOf(VideoReader::Open(file, limits).status()), BadVideoReason::kTooLarge);
  limits = ReaderLimits();
  limits.max_file_bytes = 100;
  EXPECT_EQ(ReasonOf(VideoReader::Open(file, limits).status()), BadVideoReason::kTooLarge);
  limits = ReaderLimits();
  limits.max_frames = 20;
  EXPECT_OK(VideoReader::Open(file, limits).status());
}

TEST(BadInputTest, DeadlinesAreNotBadVideos) {
  ScratchDir dir;
  const std::string file = dir.File("v.mkv");
  ASSERT_TRUE(Generate(file, "96x64", 20, "-c:v mjpeg"));
  ReaderLimits limits;
  limits.open_timeout = absl::ZeroDuration();
  auto slow = VideoReader::Open(file, limits);
  EXPECT_EQ(slow.status().code(), absl::StatusCode::kDeadlineExceeded) << slow.status();
  EXPECT_EQ(ReasonOf(slow.status()), std::nullopt);

  ASSERT_OK_AND_ASSIGN(auto reader, VideoReader::Open(file, ReaderLimits()));
  int calls = 0;
  const absl::Status s = reader->DecodeFrames(
      std::vector<int64_t>{0, 5},
      [&](int64_t, const FrameView&) {
        ++calls;
        return absl::OkStatus();
      },
      absl::InfinitePast());
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_EQ(ReasonOf(s), std::nullopt);
  EXPECT_EQ(calls, 0);
  // The reader still works afterwards.
  ASSERT_OK_AND_ASSIGN(auto frames, DecodeFull(*reader, {0, 5}));
  EXPECT_EQ(frames.size(), 2u);
}

TEST(BadInputTest, BadIndicesAndSinkErrors) {
  ScratchDir dir;
  const std::string file = dir.File("v.mkv");
  ASSERT_TRUE(Generate(file, "96x64", 20, "-c:v mjpeg"));
  ASSERT_OK_AND_ASSIGN(auto reader, VideoReader::Open(file, ReaderLimits()));
  auto ok = [](int64_t, const FrameView&) { return absl::OkStatus(); };
  EXPECT_THAT(reader->DecodeFrames(std::vector<int64_t>{3, 20}, ok, absl::InfiniteFuture()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside")));
  EXPECT_THAT(reader->DecodeFrames(std::vector<int64_t>{-1}, ok, absl::InfiniteFuture()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside")));
  EXPECT_THAT(reader->DecodeFrames(std::vector<int64_t>{5, 4}, ok, absl::InfiniteFuture()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ascending")));
  EXPECT_OK(reader->DecodeFrames({}, ok, absl::InfiniteFuture()));
  std::vector<int64_t> seen;
  const absl::Status s = reader->DecodeFrames(
      std::vector<int64_t>{1, 1, 4, 4, 9, 15},
      [&](int64_t i, const FrameView&) {
        seen.push_back(i);
        return i == 9 ? absl::CancelledError("enough") : absl::OkStatus();
      },
      absl::InfiniteFuture());
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kCancelled, "enough"));
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 4, 9}));
  seen.clear();
  EXPECT_OK(reader->DecodeFrames(
      std::vector<int64_t>{2, 19},
      [&](int64_t i, const FrameView&) {
        seen.push_back(i);
        return absl::OkStatus();
      },
      absl::InfiniteFuture()));
  EXPECT_EQ(seen, (std::vector<int64_t>{2, 19}));
}

// A frame whose data is destroyed fails the same way every time; the others still decode.
TEST(BadInputTest, DecodeErrorAtANeededPacketIsDeterministic) {
  ScratchDir dir;
  const std::string file = dir.File("v.avi");
  ASSERT_TRUE(Generate(file, "96x64", 20, "-c:v mjpeg -q:v 4"));
  const auto [rc, out] = Shell(
      "ffprobe -v error -select_streams v:0 -show_entries packet=pos,size "
      "-of csv=p=0 " +
      Quote(file));
  ASSERT_EQ(rc, 0);
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 20u);
  std::vector<std::string> cols = absl::StrSplit(lines[7], ',');
  int64_t size = 0, pos = 0;
  ASSERT_TRUE(absl::SimpleAtoi(cols[0], &size));
  ASSERT_TRUE(absl::SimpleAtoi(cols[1], &pos));
  std::string data = ReadFile(file);
  for (int64_t i = pos; i < pos + size; ++i) data[i] = '\0';
  WriteFile(file, data);
  ASSERT_OK_AND_ASSIGN(auto reader, VideoReader::Open(file, ReaderLimits()));
  ASSERT_EQ(reader->info().frames, 20);
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto broken = DecodeFull(*reader, {2, 7, 12});
    EXPECT_EQ(ReasonOf(broken.status()), BadVideoReason::kDecodeError) << broken.status();
    EXPECT_THAT(broken.status().message(), HasSubstr("frame 7"));
  }
  ASSERT_OK_AND_ASSIGN(auto fine, DecodeFull(*reader, {2, 6, 8, 12}));
  EXPECT_EQ(fine.size(), 4u);
}

TEST(CacheTest, TheDemuxPassRunsOncePerFileVersion) {
  ScratchDir dir;
  const std::string file = dir.File("v.mkv");
  ASSERT_TRUE(Generate(file, "96x64", 20, "-c:v mjpeg"));
  FrameIndexCache cache(4);
  ASSERT_OK_AND_ASSIGN(auto first, VideoReader::Open(file, ReaderLimits(), &cache));
  EXPECT_EQ(cache.misses(), 1);
  ASSERT_OK_AND_ASSIGN(auto second, VideoReader::Open(file, ReaderLimits(), &cache));
  EXPECT_EQ(cache.hits(), 1);
  EXPECT_EQ(second->info().frames, first->info().frames);
  EXPECT_EQ(second->info().duration_s, first->info().duration_s);
  ASSERT_OK_AND_ASSIGN(auto a, DecodeFull(*first, {0, 7, 19}));
  ASSERT_OK_AND_ASSIGN(auto b, DecodeFull(*second, {0, 7, 19}));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(SameBytes(a[i].second, b[i].second));
  // A new version of the file (another length) is indexed again.
  ASSERT_TRUE(Generate(file, "96x64", 12, "-c:v mjpeg"));
  ASSERT_OK_AND_ASSIGN(auto third, VideoReader::Open(file, ReaderLimits(), &cache));
  EXPECT_EQ(cache.misses(), 2);
  EXPECT_EQ(third->info().frames, 12);
}

TEST(StreamsTest, TheVideoStreamIsFoundAmongOthers) {
  ScratchDir dir;
  // Audio first, then the video.
  const std::string file = dir.File("a b:c'd.mkv");
  ASSERT_TRUE(Ffmpeg(absl::StrCat(
      "-f lavfi -i sine=duration=2 -f lavfi -i testsrc2=size=64x48:rate=25:duration=1.2 ",
      "-frames:v 30 -map 0:a -map 1:v -c:a pcm_s16le -c:v mjpeg ", Quote(file))));
  ASSERT_OK_AND_ASSIGN(auto reader, VideoReader::Open(file, ReaderLimits()));
  EXPECT_EQ(reader->info().frames, 30);
  EXPECT_EQ(reader->info().codec, "mjpeg");
  ExpectMatchesCli(file, {{0, 14, 29}, Linspace(3, 27, 5)});
}

TEST(StreamsTest, CoverArtIsNotAVideo) {
  if (!FfmpegHasEncoder("libmp3lame")) GTEST_SKIP() << "ffmpeg has no libmp3lame encoder";
  ScratchDir dir;
  const std::string file = dir.File("song.mp3");
  ASSERT_TRUE(Ffmpeg(absl::StrCat(
      "-f lavfi -i sine=duration=1 -f lavfi -i color=red:size=32x32:duration=0.04 -map 0:a ",
      "-map 1:v -c:a libmp3lame -c:v png -disposition:v attached_pic -id3v2_version 3 ",
      Quote(file))));
  EXPECT_EQ(ReasonOf(VideoReader::Open(file, ReaderLimits()).status()),
            BadVideoReason::kNoVideoStream);
}

TEST(StreamsTest, AnUnknownCodecIsUnsupported) {
  ScratchDir dir;
  const std::string file = dir.File("v.mkv");
  ASSERT_TRUE(Generate(file, "64x48", 5, "-c:v mjpeg"));
  // Matroska names the codec "V_MJPEG": make it a codec nobody knows.
  std::string data = ReadFile(file);
  const size_t at = data.find("V_MJPEG");
  ASSERT_NE(at, std::string::npos);
  data.replace(at, 7, "V_XJPEG");
  WriteFile(file, data);
  auto reader = VideoReader::Open(file, ReaderLimits());
  EXPECT_EQ(ReasonOf(reader.status()), BadVideoReason::kUnsupportedCodec) << reader.status();
}

// The file shrinks after it was indexed: the frames past the new end are truncated.
TEST(BadInputTest, EndOfFileBeforeANeededFrameIsTruncated) {
  ScratchDir dir;
  const std::string file = dir.File("v.mkv");
  ASSERT_TRUE(Generate(file, "96x64", 30, "-c:v mjpeg -q:v 4"));
  ASSERT_OK_AND_ASSIGN(auto reader, VideoReader::Open(file, ReaderLimits()));
  ASSERT_EQ(reader->info().frames, 30);
  // (Reading the start moves the demuxer's buffer away from the end, which it has read.)
  ASSERT_OK(DecodeFull(*reader, {0}).status());
  ASSERT_EQ(truncate(file.c_str(), FileSize(file) / 3), 0);
  auto late = DecodeFull(*reader, {28, 29});
  EXPECT_EQ(ReasonOf(late.status()), BadVideoReason::kTruncated) << late.status();
  ASSERT_OK_AND_ASSIGN(auto early, DecodeFull(*reader, {0, 2}));
  EXPECT_EQ(early.size(), 2u);
}

}  // namespace
}  // namespace vjepa::dataworker
