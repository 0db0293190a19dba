#include "services/trainer/checkpoint/file_io.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/trainer/checkpoint/test_util.h"

namespace vjepa::checkpoint {
namespace {

using ::testing::HasSubstr;
using testing::ReadBytes;
using testing::ScratchDir;
using testing::WriteBytes;

TEST(AtomicFileWriterTest, CommitReplacesTheFileAndLeavesNoTempFile) {
  ScratchDir dir;
  const std::string path = dir.File("out.bin");
  WriteBytes(path, "old contents");
  auto writer = AtomicFileWriter::Open(path);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Append("hello world", 11).ok());
  EXPECT_EQ(ReadBytes(path), "old contents");  // not visible before the commit
  ASSERT_TRUE((*writer)->WriteAt(0, "J", 1).ok());
  EXPECT_EQ((*writer)->size(), 11u);
  EXPECT_EQ((*writer)->temp_path().substr(0, dir.path().size() + 1), dir.path() + "/");
  ASSERT_TRUE((*writer)->Commit().ok());
  EXPECT_EQ(ReadBytes(path), "Jello world");
  writer->reset();
  EXPECT_EQ(dir.List(), (std::set<std::string>{"out.bin"}));
}

TEST(AtomicFileWriterTest, AnAbandonedWriteLeavesTheOldFileAndNoTempFile) {
  ScratchDir dir;
  const std::string path = dir.File("out.bin");
  WriteBytes(path, "old contents");
  {
    auto writer = AtomicFileWriter::Open(path);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Append("partial", 7).ok());
    EXPECT_EQ(dir.List().size(), 2u);
  }
  EXPECT_EQ(ReadBytes(path), "old contents");
  EXPECT_EQ(dir.List(), (std::set<std::string>{"out.bin"}));
}

TEST(AtomicFileWriterTest, AFailedWriteLeavesTheOldFile) {
  ScratchDir dir;
  const std::string path = dir.File("out.bin");
  WriteBytes(path, "old contents");
  // Files may not grow past 1 KiB: the write fails half-way (EFBIG) like a full disk.
  struct rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  const auto old_handler = signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = 1024;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  core::Status status;
  {
    auto writer = AtomicFileWriter::Open(path);
    ASSERT_TRUE(writer.ok());
    const std::string block(4096, 'x');
    status = (*writer)->Append(block.data(), block.size());
    if (status.ok()) status = (*writer)->Commit();
  }
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &saved), 0);
  signal(SIGXFSZ, old_handler);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("cannot write"));
  EXPECT_EQ(ReadBytes(path), "old contents");
  EXPECT_EQ(dir.List(), (std::set<std::string>{"out.bin"}));
}

TEST(AtomicFileWriterTest, ReportsBadPaths) {
  ScratchDir dir;
  EXPECT_EQ(AtomicFileWriter::Open(dir.File("no/such/dir/f")).status().code(),
            core::Code::kNotFound);
  EXPECT_EQ(AtomicFileWriter::Open("").status().code(), core::Code::kInvalidArgument);
  EXPECT_EQ(AtomicFileWriter::Open(dir.path() + "/").status().code(), core::Code::kInvalidArgument);
  auto writer = AtomicFileWriter::Open(dir.File("f"));
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append("abc", 3).ok());
  EXPECT_EQ((*writer)->WriteAt(2, "xy", 2).code(), core::Code::kInvalidArgument);
  // Renaming over a directory fails; the temp file goes away with the writer.
  ASSERT_EQ(::mkdir(dir.File("d").c_str(), 0755), 0);
  auto onto_dir = AtomicFileWriter::Open(dir.File("d"));
  ASSERT_TRUE(onto_dir.ok());
  EXPECT_FALSE((*onto_dir)->Commit().ok());
  onto_dir->reset();
  writer->reset();
  EXPECT_EQ(dir.List(), (std::set<std::string>{"d"}));
}

TEST(ReadExactlyAtTest, ReadsAtOffsetsAndReportsShortFiles) {
  ScratchDir dir;
  WriteBytes(dir.File("f"), "0123456789");
  auto fd = OpenForRead(dir.File("f"));
  ASSERT_TRUE(fd.ok());
  char buf[4];
  ASSERT_TRUE(ReadExactlyAt(fd->get(), buf, 4, 3, dir.File("f")).ok());
  EXPECT_EQ(std::string(buf, 4), "3456");
  auto short_read = ReadExactlyAt(fd->get(), buf, 4, 8, dir.File("f"));
  EXPECT_EQ(short_read.code(), core::Code::kDataLoss);
  EXPECT_THAT(short_read.message(), HasSubstr("file ends at byte 10, expected 2 more bytes"));
  EXPECT_EQ(*FileSize(fd->get(), dir.File("f")), 10u);
}

}  // namespace
}  // namespace vjepa::checkpoint
