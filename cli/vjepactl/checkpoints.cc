#include "cli/vjepactl/checkpoints.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/rpc/client.h"
#include "common/status/grpc_status.h"
#include "common/status/status_macros.h"
#include "services/trainer/checkpoint/file_io.h"
#include "services/trainer/checkpoint/safetensors_header.h"
#include "services/trainer/checkpoint/sha256.h"

namespace vjepa::vjepactl {
namespace {

namespace fs = std::filesystem;

absl::Status ToAbsl(const core::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.code()), s.message());
}

// A pull may take much longer than one unary call.
constexpr absl::Duration kMinPullDeadline = absl::Hours(1);

Json CheckpointToJson(const v1::Checkpoint& c) {
  Json j = Json::object();
  j["id"] = c.id();
  j["job_id"] = c.job_id();
  j["step"] = c.step();
  j["generation"] = c.generation();
  j["size_bytes"] = c.size_bytes();
  j["sha256"] = c.sha256();
  j["create_time"] = Rfc3339(c.create_time_ms());
  j["final"] = c.final();
  return j;
}

std::string HumanBytes(int64_t n) {
  if (n < 1024) return absl::StrCat(n, " B");
  if (n < (int64_t{1} << 20)) return absl::StrFormat("%.1f KiB", n / 1024.0);
  if (n < (int64_t{1} << 30)) return absl::StrFormat("%.1f MiB", n / 1048576.0);
  return absl::StrFormat("%.2f GiB", n / 1073741824.0);
}

void Progress(std::ostream& err, const std::string& what, int64_t done, int64_t total) {
  constexpr int kWidth = 30;
  const double f = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  const int filled = static_cast<int>(f * kWidth);
  err << "\r" << what << " [" << std::string(filled, '#') << std::string(kWidth - filled, ' ')
      << "] " << absl::StrFormat("%3d%%", static_cast<int>(f * 100)) << " " << HumanBytes(done)
      << " / " << HumanBytes(total) << std::flush;
}

// Runs `argv` and waits for it; INTERNAL with its exit status when it fails.
absl::Status RunChild(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return absl::InternalError(absl::StrCat("waitpid: ", std::strerror(errno)));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(argv[0], " failed (",
                                          WIFEXITED(status)
                                              ? absl::StrCat("exit ", WEXITSTATUS(status))
                                              : absl::StrCat("signal ", WTERMSIG(status)),
                                          ")"));
}

absl::StatusOr<v1::Checkpoint> Resolve(const CommandConfig& config, const PullOptions& options,
                                       v1::CheckpointService::StubInterface* checkpoints) {
  v1::ListCheckpointsRequest request;
  request.set_job_id(options.job_id);
  v1::ListCheckpointsResponse response;
  RETURN_IF_ERROR(UnaryCall(config, "ListCheckpoints", [&](grpc::ClientContext* context) {
    response.Clear();
    return checkpoints->ListCheckpoints(context, request, &response);
  }));
  if (response.checkpoints().empty()) {
    return absl::NotFoundError(absl::StrCat("job ", options.job_id, " has no checkpoint yet"));
  }
  if (options.step < 0)
    return *std::max_element(
        response.checkpoints().begin(), response.checkpoints().end(),
        [](const v1::Checkpoint& a, const v1::Checkpoint& b) { return a.step() < b.step(); });
  for (const v1::Checkpoint& c : response.checkpoints()) {
    if (c.step() == options.step) return c;
  }
  return absl::NotFoundError(
      absl::StrCat("job ", options.job_id, " has no checkpoint at step ", options.step));
}

absl::Status DoPull(const CommandConfig& config, const PullOptions& options,
                    v1::CheckpointService::StubInterface* checkpoints, std::ostream& out,
                    std::ostream& err) {
  if (options.out.empty()) return absl::InvalidArgumentError("-o: must name the output file");
  if (options.format != "safetensors" && options.format != "pth") {
    return absl::InvalidArgumentError(
        absl::StrCat("--format: must be safetensors or pth, got ", options.format));
  }
  if (options.format == "pth" && !options.only.empty()) {
    return absl::InvalidArgumentError(
        "--only and --format pth go separately: the .pth.tar export holds every model");
  }
  if (options.format == "pth" &&
      (options.export_binary.empty() || access(options.export_binary.c_str(), X_OK) != 0)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--format pth needs vjepa-export beside vjepactl, not found at '",
                     options.export_binary, "' (it comes with a build that has LibTorch)"));
  }
  ASSIGN_OR_RETURN(v1::Checkpoint ckpt, Resolve(config, options, checkpoints));
  const std::string partial = options.out + ".partial";
  std::error_code ec;
  int64_t offset = 0;
  if (fs::exists(partial, ec)) offset = static_cast<int64_t>(fs::file_size(partial, ec));
  if (ec) return absl::InternalError(absl::StrCat(partial, ": ", ec.message()));
  if (offset > ckpt.size_bytes()) {  // not a prefix of this checkpoint: start over
    fs::remove(partial, ec);
    offset = 0;
  }
  const std::string what = absl::StrCat("pull ", ckpt.id());
  if (offset < ckpt.size_bytes()) {
    std::ofstream file(partial, std::ios::binary | std::ios::app);
    if (!file) {
      return absl::FailedPreconditionError(
          absl::StrCat(partial, ": cannot open for writing: ", std::strerror(errno)));
    }
    v1::PullCheckpointRequest request;
    request.set_job_id(ckpt.job_id());
    request.set_step(ckpt.step());
    request.set_offset(offset);
    auto context = rpc::MakeContext(config.token, std::max(config.timeout, kMinPullDeadline));
    auto reader = checkpoints->PullCheckpoint(context.get(), request);
    v1::PullCheckpointResponse msg;
    int64_t have = offset;
    while (reader->Read(&msg)) {
      if (msg.checkpoint().sha256() != ckpt.sha256() || msg.offset() != have) {
        context->TryCancel();
        (void)reader->Finish();
        return absl::DataLossError(absl::StrCat(
            "checkpoint ", ckpt.id(), " changed during the pull or the stream is out of order"));
      }
      file.write(msg.data().data(), static_cast<std::streamsize>(msg.data().size()));
      if (!file) return absl::InternalError(absl::StrCat(partial, ": write failed"));
      have += static_cast<int64_t>(msg.data().size());
      if (options.progress) Progress(err, what, have, ckpt.size_bytes());
    }
    file.close();
    if (options.progress) err << "\n";
    RETURN_IF_ERROR(AnnotateConnection(FromGrpcStatus(reader->Finish()), config));
    if (!file) return absl::InternalError(absl::StrCat(partial, ": write failed"));
    if (have != ckpt.size_bytes()) {
      return absl::UnavailableError(absl::StrCat("pull of ", ckpt.id(), " ended at byte ", have,
                                                 " of ", ckpt.size_bytes(),
                                                 "; run the command again to resume"));
    }
  }
  auto digest = checkpoint::FileSha256(partial);
  if (!digest.ok()) return ToAbsl(digest.status());
  if (*digest != ckpt.sha256()) {
    fs::remove(partial, ec);
    return absl::DataLossError(absl::StrCat("checkpoint ", ckpt.id(), ": SHA-256 of the download ",
                                            *digest, " is not the checkpoint's ", ckpt.sha256(),
                                            "; deleted ", partial));
  }
  if (!options.only.empty()) {
    RETURN_IF_ERROR(SelectTensors(partial, options.only, options.out));
    fs::remove(partial, ec);
  } else if (options.format == "pth") {
    RETURN_IF_ERROR(RunChild(
        {options.export_binary, "--checkpoint", partial, "--out", options.out, "--format", "pth"}));
    fs::remove(partial, ec);
  } else {
    fs::rename(partial, options.out, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot rename ", partial, " to ", options.out, ": ", ec.message()));
    }
  }
  if (config.output == OutputFormat::kTable) {
    out << "checkpoint/" << ckpt.id() << " (" << HumanBytes(ckpt.size_bytes()) << ", sha256 "
        << ckpt.sha256() << ") -> " << options.out << "\n";
  } else {
    Json j = CheckpointToJson(ckpt);
    j["file"] = options.out;
    PrintStructured(j, config.output, out);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SelectTensors(const std::string& in, const std::string& prefix,
                           const std::string& out) {
  auto fd = checkpoint::OpenForRead(in);
  if (!fd.ok()) return ToAbsl(fd.status());
  auto header = checkpoint::ReadSafetensorsHeader(fd->get(), in);
  if (!header.ok()) return ToAbsl(header.status());
  const std::string dotted = prefix + ".";
  std::vector<checkpoint::TensorInfo> selected;
  std::vector<uint64_t> sources;
  uint64_t offset = 0;
  for (const checkpoint::TensorInfo& t : header->tensors) {
    if (t.name.rfind(dotted, 0) != 0) continue;
    checkpoint::TensorInfo n = t;
    n.name = t.name.substr(dotted.size());
    n.begin = offset;
    n.end = offset + (t.end - t.begin);
    offset = n.end;
    sources.push_back(header->data_start + t.begin);
    selected.push_back(std::move(n));
  }
  if (selected.empty()) {
    return absl::NotFoundError(absl::StrCat(in, ": no tensor under \"", dotted, "\""));
  }
  // Copy the data once to hash it, then write it after the header.
  std::string data(offset, '\0');
  for (size_t i = 0; i < selected.size(); ++i) {
    const uint64_t size = selected[i].end - selected[i].begin;
    RETURN_IF_ERROR(ToAbsl(checkpoint::ReadExactlyAt(fd->get(), data.data() + selected[i].begin,
                                                     size, sources[i], in)));
  }
  std::map<std::string, std::string> metadata = header->metadata;
  metadata[checkpoint::kTensorSha256Key] = checkpoint::Sha256Hex(data);
  metadata["vjepactl.only"] = prefix;
  auto json = checkpoint::SerializeSafetensorsHeader(selected, metadata);
  if (!json.ok()) return ToAbsl(json.status());
  auto writer = checkpoint::AtomicFileWriter::Open(out);
  if (!writer.ok()) return ToAbsl(writer.status());
  uint8_t length[8];
  uint64_t n = json->size();
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(n >> (8 * i));
  RETURN_IF_ERROR(ToAbsl((*writer)->Append(length, sizeof(length))));
  RETURN_IF_ERROR(ToAbsl((*writer)->Append(json->data(), json->size())));
  RETURN_IF_ERROR(ToAbsl((*writer)->Append(data.data(), data.size())));
  return ToAbsl((*writer)->Commit());
}

int ListCheckpoints(const CommandConfig& config, const std::string& job_id,
                    v1::CheckpointService::StubInterface* checkpoints, std::ostream& out,
                    std::ostream& err) {
  v1::ListCheckpointsRequest request;
  request.set_job_id(job_id);
  v1::ListCheckpointsResponse response;
  absl::Status s = UnaryCall(config, "ListCheckpoints", [&](grpc::ClientContext* context) {
    response.Clear();
    return checkpoints->ListCheckpoints(context, request, &response);
  });
  if (!s.ok()) return ReportError(s, err);
  if (config.output == OutputFormat::kTable) {
    std::vector<std::vector<std::string>> rows;
    for (const v1::Checkpoint& c : response.checkpoints()) {
      rows.push_back({absl::StrCat(c.step()), absl::StrCat(c.generation()),
                      HumanBytes(c.size_bytes()), c.sha256().substr(0, 16),
                      c.final() ? "yes" : "no",
                      HumanDuration(config.now() - absl::FromUnixMillis(c.create_time_ms()))});
    }
    out << RenderTable({"STEP", "GENERATION", "SIZE", "SHA256", "FINAL", "AGE"}, rows);
    return kExitOk;
  }
  Json list = Json::array();
  for (const v1::Checkpoint& c : response.checkpoints()) list.push_back(CheckpointToJson(c));
  PrintStructured(list, config.output, out);
  return kExitOk;
}

int PullCheckpoint(const CommandConfig& config, const PullOptions& options,
                   v1::CheckpointService::StubInterface* checkpoints, std::ostream& out,
                   std::ostream& err) {
  return ReportError(DoPull(config, options, checkpoints, out, err), err);
}

int DeleteJob(const CommandConfig& config, const std::string& id,
              v1::JobService::StubInterface* jobs, std::ostream& out, std::ostream& err) {
  v1::DeleteJobRequest request;
  request.set_id(id);
  v1::DeleteJobResponse response;
  absl::Status s = UnaryCall(config, "DeleteJob", [&](grpc::ClientContext* context) {
    response.Clear();
    return jobs->DeleteJob(context, request, &response);
  });
  if (!s.ok()) return ReportError(s, err);
  if (config.output == OutputFormat::kTable) {
    out << "job/" << response.id() << " deleted with " << response.checkpoints_deleted()
        << " checkpoint(s)\n";
  } else {
    Json j = Json::object();
    j["id"] = response.id();
    j["checkpoints_deleted"] = response.checkpoints_deleted();
    PrintStructured(j, config.output, out);
  }
  return kExitOk;
}

}  // namespace vjepa::vjepactl
