// POSIX file helpers for checkpoints: reading at offsets, and atomic replacement of a file
// (temp file in the same directory, fsync, rename, fsync of the directory).
#ifndef VJEPA_SERVICES_TRAINER_CHECKPOINT_FILE_IO_H_
#define VJEPA_SERVICES_TRAINER_CHECKPOINT_FILE_IO_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/core/status.h"

namespace vjepa::checkpoint {

// An open file descriptor, closed on destruction.
class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(ScopedFd&& other) noexcept : fd_(other.release()) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept;
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd();

  int get() const { return fd_; }
  int release();

 private:
  int fd_ = -1;
};

// Status for a failed system call on path: NOT_FOUND for a missing file or directory,
// FAILED_PRECONDITION for permissions and wrong file kinds, INTERNAL otherwise.
core::Status ErrnoStatus(int error, const std::string& what, const std::string& path);

// Opens a regular file for reading.
core::StatusOr<ScopedFd> OpenForRead(const std::string& path);
core::StatusOr<uint64_t> FileSize(int fd, const std::string& path);

// Reads exactly size bytes at offset; DATA_LOSS when the file ends first.
core::Status ReadExactlyAt(int fd, void* buffer, size_t size, uint64_t offset,
                           const std::string& path);

// Writes a new version of a file. Bytes go to a temp file beside the destination; Commit() makes
// them durable and renames the temp file over the destination, so readers see either the old
// file or the complete new one. Destroying an uncommitted writer removes the temp file.
class AtomicFileWriter {
 public:
  static core::StatusOr<std::unique_ptr<AtomicFileWriter>> Open(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  core::Status Append(const void* data, size_t size);
  // Overwrites bytes already appended (offset + size <= size()).
  core::Status WriteAt(uint64_t offset, const void* data, size_t size);
  // fsync, rename over the destination, fsync of the directory. The writer is done afterwards.
  core::Status Commit();

  uint64_t size() const { return size_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  AtomicFileWriter(std::string path, std::string temp_path, ScopedFd fd)
      : path_(std::move(path)), temp_path_(std::move(temp_path)), fd_(std::move(fd)) {}
  core::Status PWriteAll(const void* data, size_t size, uint64_t offset);

  std::string path_;
  std::string temp_path_;
  ScopedFd fd_;
  uint64_t size_ = 0;
  bool committed_ = false;
};

}  // namespace vjepa::checkpoint

#endif  // VJEPA_SERVICES_TRAINER_CHECKPOINT_FILE_IO_H_
