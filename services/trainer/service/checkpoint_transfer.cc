#include "services/trainer/service/checkpoint_transfer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/rpc/client.h"
#include "common/status/grpc_status.h"
#include "common/status/retry.h"
#include "glog/logging.h"
#include "services/trainer/checkpoint/sha256.h"

namespace vjepa::trainer {
namespace {

constexpr int64_t kChunkBytes = 1 << 20;

bool Transient(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s);
}

bool Cancelled(const TransferOptions& o) { return o.cancelled && o.cancelled(); }

}  // namespace

absl::Status RetryTransient(const std::string& what, const TransferOptions& options,
                            const std::function<absl::Status()>& attempt) {
  RetryOptions retry;
  retry.initial_backoff = options.initial_backoff;
  retry.max_backoff = options.max_backoff;
  retry.retriable = Transient;
  // Backing off ends early on cancellation; the next attempt then reports it.
  retry.sleep = [&](absl::Duration d) {
    const absl::Time until = absl::Now() + d;
    while (absl::Now() < until && !Cancelled(options)) {
      absl::SleepFor(std::min(absl::Milliseconds(50), until - absl::Now()));
    }
  };
  return RetryWithDeadline(
      [&]() -> absl::Status {
        if (Cancelled(options)) return absl::CancelledError(absl::StrCat(what, ": cancelled"));
        absl::Status s = attempt();
        if (Transient(s)) LOG(WARNING) << what << ": " << s << "; retrying within the budget";
        return s;
      },
      what, absl::Now() + options.retry_budget, retry);
}

absl::Status FileDigest(const std::string& path, std::string* sha256_hex, int64_t* size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  checkpoint::Sha256 sha;
  std::vector<char> buf(static_cast<size_t>(kChunkBytes));
  int64_t total = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize n = in.gcount();
    if (n > 0) {
      sha.Update(buf.data(), static_cast<size_t>(n));
      total += n;
    }
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  *sha256_hex = checkpoint::ToHex(sha.Finish());
  *size = total;
  return absl::OkStatus();
}

absl::StatusOr<v1::UploadCheckpointResponse> UploadCheckpoint(
    v1::WorkerService::StubInterface* stub, v1::UploadCheckpointRequest::Header header,
    const std::string& path, const TransferOptions& options) {
  std::string sha;
  int64_t size = 0;
  if (absl::Status s = FileDigest(path, &sha, &size); !s.ok()) return s;
  header.set_size_bytes(size);
  header.set_sha256(sha);
  v1::UploadCheckpointResponse response;
  absl::Status s = RetryTransient(
      absl::StrCat("UploadCheckpoint of step ", header.step()), options, [&]() -> absl::Status {
        std::ifstream in(path, std::ios::binary);
        if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
        auto ctx = rpc::MakeContext(options.token, options.attempt_timeout);
        response.Clear();
        std::unique_ptr<grpc::ClientWriterInterface<v1::UploadCheckpointRequest>> writer =
            stub->UploadCheckpoint(ctx.get(), &response);
        v1::UploadCheckpointRequest req;
        *req.mutable_header() = header;
        bool open = writer->Write(req);
        std::string buf(static_cast<size_t>(kChunkBytes), '\0');
        int64_t sent = 0;
        while (open && sent < size) {
          in.read(buf.data(), static_cast<std::streamsize>(std::min(kChunkBytes, size - sent)));
          const std::streamsize n = in.gcount();
          if (n <= 0) break;
          req.set_chunk(buf.data(), static_cast<size_t>(n));
          open = writer->Write(req);
          sent += n;
          if (Cancelled(options)) {
            ctx->TryCancel();
            break;
          }
        }
        if (open) writer->WritesDone();
        absl::Status finish = FromGrpcStatus(writer->Finish());
        if (finish.ok() && sent != size) {
          return absl::DataLossError(
              absl::StrCat(path, ": read ", sent, " of ", size, " bytes while uploading"));
        }
        return finish;
      });
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<v1::Checkpoint> PullCheckpoint(v1::CheckpointService::StubInterface* stub,
                                              const std::string& job_id, int64_t step,
                                              const std::string& path,
                                              const TransferOptions& options) {
  v1::Checkpoint meta;
  absl::Status s = RetryTransient(
      absl::StrCat("PullCheckpoint ", job_id, "/", step), options, [&]() -> absl::Status {
        std::error_code ec;
        int64_t offset = 0;
        if (std::filesystem::exists(path, ec)) {
          offset = static_cast<int64_t>(std::filesystem::file_size(path, ec));
          if (ec) offset = 0;
        }
        std::ofstream out(path, std::ios::binary | std::ios::app);
        if (!out) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot write"));
        v1::PullCheckpointRequest req;
        req.set_job_id(job_id);
        req.set_step(step);
        req.set_offset(offset);
        req.set_worker_id(options.worker_id);
        auto ctx = rpc::MakeContext(options.token, options.attempt_timeout);
        std::unique_ptr<grpc::ClientReaderInterface<v1::PullCheckpointResponse>> reader =
            stub->PullCheckpoint(ctx.get(), req);
        v1::PullCheckpointResponse resp;
        int64_t at = offset;
        while (reader->Read(&resp)) {
          meta = resp.checkpoint();
          if (resp.offset() != at) {
            ctx->TryCancel();
            reader->Finish();
            return absl::DataLossError(absl::StrCat("PullCheckpoint: a chunk at offset ",
                                                    resp.offset(), ", expected ", at));
          }
          out.write(resp.data().data(), static_cast<std::streamsize>(resp.data().size()));
          at += static_cast<int64_t>(resp.data().size());
          if (Cancelled(options)) ctx->TryCancel();
        }
        out.flush();
        if (!out) return absl::DataLossError(absl::StrCat(path, ": write error"));
        absl::Status finish = FromGrpcStatus(reader->Finish());
        if (absl::IsOutOfRange(finish)) {
          // A partial file longer than the checkpoint: start over.
          std::filesystem::remove(path, ec);
          return absl::UnavailableError(absl::StrCat("PullCheckpoint: ", finish.message()));
        }
        return finish;
      });
  if (!s.ok()) return s;
  std::string sha;
  int64_t size = 0;
  if (absl::Status d = FileDigest(path, &sha, &size); !d.ok()) return d;
  if (size != meta.size_bytes() || sha != meta.sha256()) {
    std::error_code ec;
    std::filesystem::remove(path, ec);
    return absl::DataLossError(
        absl::StrCat("checkpoint ", job_id, "/", step, ": got ", size, " bytes with SHA-256 ", sha,
                     ", expected ", meta.size_bytes(), " bytes with SHA-256 ", meta.sha256()));
  }
  return meta;
}

}  // namespace vjepa::trainer
