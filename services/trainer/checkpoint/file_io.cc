#include "services/trainer/checkpoint/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <system_error>
#include <utility>

namespace vjepa::checkpoint {
namespace {

// write/pwrite/read move at most this much per call on Linux.
constexpr size_t kMaxIo = size_t{1} << 30;

std::string DirName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

ScopedFd& ScopedFd::operator=(ScopedFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

ScopedFd::~ScopedFd() {
  if (fd_ >= 0) ::close(fd_);
}

int ScopedFd::release() { return std::exchange(fd_, -1); }

core::Status ErrnoStatus(int error, const std::string& what, const std::string& path) {
  std::string message = what + " " + path + ": " + std::generic_category().message(error);
  switch (error) {
    case ENOENT:
    case ENOTDIR:
      return core::NotFoundError(std::move(message));
    case EACCES:
    case EPERM:
    case EISDIR:
    case EROFS:
      return core::FailedPreconditionError(std::move(message));
    default:
      return core::InternalError(std::move(message));
  }
}

core::StatusOr<ScopedFd> OpenForRead(const std::string& path) {
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(errno, "cannot open", path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "cannot stat", path);
  if (!S_ISREG(st.st_mode)) {
    return core::FailedPreconditionError("cannot read " + path + ": not a regular file");
  }
  return fd;
}

core::StatusOr<uint64_t> FileSize(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus(errno, "cannot stat", path);
  return static_cast<uint64_t>(st.st_size);
}

core::Status ReadExactlyAt(int fd, void* buffer, size_t size, uint64_t offset,
                           const std::string& path) {
  auto* out = static_cast<char*>(buffer);
  size_t done = 0;
  while (done < size) {
    const ssize_t n =
        ::pread(fd, out + done, std::min(size - done, kMaxIo), static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "cannot read", path);
    }
    if (n == 0) {
      return core::DataLossError(path + ": file ends at byte " + std::to_string(offset + done) +
                                 ", expected " + std::to_string(size - done) + " more bytes");
    }
    done += static_cast<size_t>(n);
  }
  return core::OkStatus();
}

core::StatusOr<std::unique_ptr<AtomicFileWriter>> AtomicFileWriter::Open(const std::string& path) {
  if (path.empty() || path.back() == '/') {
    return core::InvalidArgumentError("cannot write '" + path + "': not a file name");
  }
  static std::atomic<uint64_t> counter{0};
  const std::string temp_path = DirName(path) + "/." + BaseName(path) + ".tmp-" +
                                std::to_string(::getpid()) + "-" + std::to_string(counter++);
  ScopedFd fd(::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (fd.get() < 0) return ErrnoStatus(errno, "cannot create temp file", temp_path);
  return std::unique_ptr<AtomicFileWriter>(new AtomicFileWriter(path, temp_path, std::move(fd)));
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) {
    fd_ = ScopedFd();
    ::unlink(temp_path_.c_str());
  }
}

core::Status AtomicFileWriter::PWriteAll(const void* data, size_t size, uint64_t offset) {
  if (committed_) return core::FailedPreconditionError(path_ + ": already committed");
  const auto* in = static_cast<const char*>(data);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pwrite(fd_.get(), in + done, std::min(size - done, kMaxIo),
                               static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "cannot write", temp_path_);
    }
    done += static_cast<size_t>(n);
  }
  return core::OkStatus();
}

core::Status AtomicFileWriter::Append(const void* data, size_t size) {
  CORE_RETURN_IF_ERROR(PWriteAll(data, size, size_));
  size_ += size;
  return core::OkStatus();
}

core::Status AtomicFileWriter::WriteAt(uint64_t offset, const void* data, size_t size) {
  if (offset > size_ || size > size_ - offset) {
    return core::InvalidArgumentError(temp_path_ + ": WriteAt(" + std::to_string(offset) + ", " +
                                      std::to_string(size) + ") past the " + std::to_string(size_) +
                                      " bytes written");
  }
  return PWriteAll(data, size, offset);
}

core::Status AtomicFileWriter::Commit() {
  if (committed_) return core::FailedPreconditionError(path_ + ": already committed");
  if (::fsync(fd_.get()) != 0) return ErrnoStatus(errno, "cannot fsync", temp_path_);
  if (::close(fd_.release()) != 0) return ErrnoStatus(errno, "cannot close", temp_path_);
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    return ErrnoStatus(errno, "cannot rename " + temp_path_ + " to", path_);
  }
  committed_ = true;
  const std::string dir = DirName(path_);
  ScopedFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0) return ErrnoStatus(errno, "cannot open directory", dir);
  if (::fsync(dir_fd.get()) != 0) return ErrnoStatus(errno, "cannot fsync directory", dir);
  return core::OkStatus();
}

}  // namespace vjepa::checkpoint
