// Python reads what this folder writes: a pure-Python safetensors reader (struct + json + hashlib)
// reads our files, and Debian's torch (python3-torch, /usr/bin/python3) torch.loads the
// reference export and loads its dicts with strict=True. Tests skip when the interpreter or
// torch is missing. Also drives the vjepa-export binary.
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/trainer/checkpoint/checkpoint.h"
#include "services/trainer/checkpoint/reference_export.h"
#include "services/trainer/checkpoint/safetensors.h"
#include "services/trainer/checkpoint/test_util.h"

namespace vjepa::checkpoint {
namespace {

using ::testing::HasSubstr;
using testing::ReadBytes;
using testing::ScratchDir;
using testing::WriteBytes;

constexpr char kPython[] = "/usr/bin/python3";

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

RunResult RunShell(const std::string& command) {
  RunResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }

bool HavePython() { return ::access(kPython, X_OK) == 0; }
bool HavePythonTorch() {
  return HavePython() && RunShell(std::string(kPython) + " -c 'import torch'").exit_code == 0;
}

std::string BinDir() {
  if (const char* dir = std::getenv("VJEPA_BIN_DIR")) return dir;
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "bin" : (self.parent_path().parent_path() / "bin").string();
}

constexpr char kSafetensorsReader[] = R"py(
import hashlib, json, struct, sys
raw = open(sys.argv[1], 'rb').read()
(n,) = struct.unpack('<Q', raw[:8])
assert n % 8 == 0 and raw[8:9] == b'{', n
header = json.loads(raw[8:8 + n].decode('utf-8'))
data = raw[8 + n:]
meta = header.pop('__metadata__', {})
fmt = {'F64': 'd', 'F32': 'f', 'F16': 'e', 'I64': 'q', 'I32': 'i', 'I16': 'h', 'I8': 'b',
       'U8': 'B', 'BOOL': '?'}
size = {'F64': 8, 'F32': 4, 'F16': 2, 'BF16': 2, 'I64': 8, 'I32': 4, 'I16': 2, 'I8': 1, 'U8': 1,
        'BOOL': 1}
pos = 0
for begin, end in sorted(tuple(v['data_offsets']) for v in header.values()):
    assert begin == pos, (begin, pos)
    pos = end
assert pos == len(data), (pos, len(data))
for name, info in header.items():
    begin, end = info['data_offsets']
    dtype, shape = info['dtype'], info['shape']
    count = 1
    for d in shape:
        count *= d
    assert end - begin == count * size[dtype] and begin % size[dtype] == 0, name
    buf = data[begin:end]
    if dtype == 'BF16':
        values = [struct.unpack('<f', b'\x00\x00' + buf[i:i + 2])[0] for i in range(0, len(buf), 2)]
    else:
        values = list(struct.unpack('<%d%s' % (count, fmt[dtype]), buf))
    print(name, dtype, shape, values)
for key in sorted(meta):
    if key != 'tensor_sha256':
        print('metadata %s=%s' % (key, meta[key]))
print('sha256', 'ok' if hashlib.sha256(data).hexdigest() == meta['tensor_sha256'] else 'MISMATCH')
)py";

constexpr char kTorchLoader[] = R"py(
import sys, torch
path = sys.argv[1]
def skeleton(state):
    root = torch.nn.Module()
    for key, value in state.items():
        *path, leaf = key.split('.')
        module = root
        for part in path:
            if module._modules.get(part) is None:
                module.add_module(part, torch.nn.Module())
            module = module._modules[part]
        module.register_parameter(leaf, torch.nn.Parameter(torch.zeros_like(value)))
    return root
loaded = torch.load(path, map_location='cpu')
safe = torch.load(path, map_location='cpu', weights_only=True)
print('torch', torch.__version__.split('+')[0][:4], 'type', type(loaded).__name__)
print('keys', sorted(loaded.keys()), 'epoch', type(loaded['epoch']).__name__, loaded['epoch'])
print('weights_only keys', sorted(safe.keys()), 'epoch', safe['epoch'])
for model in ('encoder', 'predictor', 'target_encoder'):
    for key in sorted(loaded[model]):
        value = loaded[model][key]
        print(model, key, list(value.shape), str(value.dtype), int(value.double().sum().item()))
    module = skeleton(loaded[model])
    module.load_state_dict(loaded[model], strict=True)
    print('strict load ok', model)
)py";

class PythonInteropTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::set_num_threads(1); }

  // Runs the script with the interpreter on one file argument.
  RunResult RunScript(const char* script, const std::string& file) {
    WriteBytes(dir_.File("script.py"), script);
    return RunShell(std::string(kPython) + " " + Quote(dir_.File("script.py")) + " " + Quote(file));
  }

  ScratchDir dir_;
};

TEST_F(PythonInteropTest, PurePythonReaderReadsOurSafetensors) {
  if (!HavePython()) GTEST_SKIP() << kPython << " is missing";
  TensorFile file;
  file.tensors = {
      {"a.f64", torch::tensor({0.5, -1.25, 3e100}, torch::kFloat64)},
      {"b.f32", torch::tensor({1.0f, -2.0f, 3.5f, 0.375f}).reshape({2, 2})},
      {"c.f16", torch::tensor({1.5f, -0.25f}).to(torch::kFloat16)},
      {"d.bf16", torch::tensor({1.0f, -3.0f}).to(torch::kBFloat16)},
      {"e.i64", torch::tensor(int64_t{-5})},
      {"f.i32", torch::tensor({7, -8}, torch::kInt32)},
      {"g.i16", torch::tensor({-300}, torch::kInt16)},
      {"h.i8", torch::tensor({-1, 2}, torch::kInt8)},
      {"i.u8", torch::tensor({0, 128, 255}, torch::kUInt8)},
      {"j.bool", torch::tensor({true, false, true})},
      {"k.empty", torch::zeros({0, 3})},
  };
  file.metadata = {{"purpose", "interop"}};
  const std::string path = dir_.File("interop.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, file).ok());
  const RunResult result = RunScript(kSafetensorsReader, path);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output,
            "a.f64 F64 [3] [0.5, -1.25, 3e+100]\n"
            "b.f32 F32 [2, 2] [1.0, -2.0, 3.5, 0.375]\n"
            "c.f16 F16 [2] [1.5, -0.25]\n"
            "d.bf16 BF16 [2] [1.0, -3.0]\n"
            "e.i64 I64 [] [-5]\n"
            "f.i32 I32 [2] [7, -8]\n"
            "g.i16 I16 [1] [-300]\n"
            "h.i8 I8 [2] [-1, 2]\n"
            "i.u8 U8 [3] [0, 128, 255]\n"
            "j.bool BOOL [3] [True, False, True]\n"
            "k.empty F32 [0, 3] []\n"
            "metadata purpose=interop\n"
            "sha256 ok\n");
}

// Integer-valued tensors, so that sums print exactly on both sides.
TrainingCheckpoint IntegerCheckpoint() {
  auto ramp = [](std::vector<int64_t> shape, int64_t start, torch::ScalarType type) {
    int64_t numel = 1;
    for (const int64_t d : shape) numel *= d;
    return (torch::arange(numel, torch::kFloat64).remainder(7) + start).reshape(shape).to(type);
  };
  TrainingCheckpoint c;
  c.encoder = {{"patch_embed.proj.weight", ramp({8, 3, 2, 4, 4}, -3, torch::kFloat32)},
               {"patch_embed.proj.bias", ramp({8}, 1, torch::kFloat32)},
               {"pos_embed", ramp({1, 6, 8}, 0, torch::kFloat32)},
               {"blocks.0.attn.qkv.weight", ramp({24, 8}, 2, torch::kFloat32)},
               {"norm.weight", ramp({8}, 5, torch::kBFloat16)}};
  c.predictor = {{"predictor_embed.weight", ramp({4, 8}, 1, torch::kFloat32)},
                 {"mask_tokens.0", ramp({1, 1, 4}, 0, torch::kFloat32)},
                 {"mask_tokens.1", ramp({1, 1, 4}, 9, torch::kFloat32)},
                 {"predictor_pos_embed", ramp({1, 6, 4}, -1, torch::kFloat32)},
                 {"predictor_blocks.0.norm1.weight", ramp({4}, 3, torch::kFloat32)}};
  for (const NamedTensor& t : c.encoder) c.target_encoder.push_back({t.name, t.tensor * 2});
  c.step = 1000;
  c.iterations_per_epoch = 300;
  return c;
}

// The lines kTorchLoader prints for a model.
std::string ExpectedModelLines(const std::string& model, const std::vector<NamedTensor>& tensors) {
  std::map<std::string, std::string> lines;
  for (const NamedTensor& t : tensors) {
    std::string shape = "[";
    for (int64_t i = 0; i < t.tensor.dim(); ++i) {
      shape += (i > 0 ? ", " : "") + std::to_string(t.tensor.size(i));
    }
    shape += "]";
    const std::string dtype =
        t.tensor.scalar_type() == torch::kBFloat16 ? "torch.bfloat16" : "torch.float32";
    const auto sum = static_cast<int64_t>(t.tensor.to(torch::kFloat64).sum().item<double>());
    const std::string key = "module.backbone." + t.name;
    lines[key] = model + " " + key + " " + shape + " " + dtype + " " + std::to_string(sum) + "\n";
  }
  std::string out;
  for (const auto& [key, line] : lines) out += line;
  return out + "strict load ok " + model + "\n";
}

TEST_F(PythonInteropTest, TorchLoadsTheReferenceExportStrictly) {
  if (!HavePythonTorch()) {
    GTEST_SKIP() << "python3-torch is not installed for " << kPython
                 << " (apt-get install python3-torch)";
  }
  const TrainingCheckpoint c = IntegerCheckpoint();
  const std::string out = dir_.File("latest.pth.tar");
  ASSERT_TRUE(ExportReferencePth(c, out).ok());
  const RunResult result = RunScript(kTorchLoader, out);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const std::string keys = "['encoder', 'epoch', 'predictor', 'target_encoder']";
  EXPECT_THAT(result.output, HasSubstr("type dict\nkeys " + keys +
                                       " epoch int 3\n"
                                       "weights_only keys " +
                                       keys + " epoch 3\n"));
  EXPECT_THAT(result.output, HasSubstr(ExpectedModelLines("encoder", c.encoder)));
  EXPECT_THAT(result.output, HasSubstr(ExpectedModelLines("predictor", c.predictor)));
  EXPECT_THAT(result.output, HasSubstr(ExpectedModelLines("target_encoder", c.target_encoder)));
}

TEST_F(PythonInteropTest, ExportBinaryRefusesBadArguments) {
  const std::string bin = BinDir() + "/vjepa-export";
  ASSERT_EQ(::access(bin.c_str(), X_OK), 0) << bin << " is not built";
  const RunResult help = RunShell(Quote(bin) + " --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.output, HasSubstr("Usage: vjepa-export --checkpoint FILE --out FILE"));

  const std::string ckpt = dir_.File("c.safetensors");
  const struct {
    std::string args;
    int exit_code;
    std::string message;
  } cases[] = {
      {"", 2, "--checkpoint and --out are required"},
      {"--checkpoint " + ckpt, 2, "--checkpoint and --out are required"},
      {"--checkpoint", 2, "--checkpoint needs a value"},
      {"--checkpoint= --out x", 2, "--checkpoint is empty"},
      {"--bogus 1", 2, "unknown argument '--bogus'"},
      {"--checkpoint " + ckpt + " --out x --format onnx", 2,
       "unsupported --format 'onnx' (supported: pth)"},
      {"--checkpoint " + ckpt + " --out " + dir_.File("o"), 1, "NOT_FOUND: cannot open " + ckpt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    const RunResult result = RunShell(Quote(bin) + " " + c.args);
    EXPECT_EQ(result.exit_code, c.exit_code) << result.output;
    EXPECT_THAT(result.output, HasSubstr(c.message));
  }

  // Not a checkpoint, and a damaged one.
  ASSERT_TRUE(WriteSafetensors(ckpt, TensorFile{{{"x", torch::ones({2})}}, {}}).ok());
  RunResult plain = RunShell(Quote(bin) + " --checkpoint " + ckpt + " --out " + dir_.File("o"));
  EXPECT_EQ(plain.exit_code, 1);
  EXPECT_THAT(plain.output, HasSubstr("INVALID_ARGUMENT: " + ckpt + ": not a V-JEPA checkpoint"));
  ASSERT_TRUE(SaveCheckpoint(ckpt, IntegerCheckpoint()).ok());
  std::string bytes = ReadBytes(ckpt);
  bytes.back() ^= 0x40;
  WriteBytes(ckpt, bytes);
  RunResult damaged = RunShell(Quote(bin) + " --checkpoint " + ckpt + " --out " + dir_.File("o"));
  EXPECT_EQ(damaged.exit_code, 1);
  EXPECT_THAT(damaged.output, HasSubstr("DATA_LOSS: safetensors file " + ckpt));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("o")));
}

TEST_F(PythonInteropTest, ExportBinaryWritesTheReferenceLayout) {
  const std::string bin = BinDir() + "/vjepa-export";
  ASSERT_EQ(::access(bin.c_str(), X_OK), 0) << bin << " is not built";
  const TrainingCheckpoint c = IntegerCheckpoint();
  const std::string ckpt = dir_.File("c.safetensors");
  const std::string out = dir_.File("latest.pth.tar");
  ASSERT_TRUE(SaveCheckpoint(ckpt, c).ok());
  const RunResult result =
      RunShell(Quote(bin) + " --checkpoint=" + ckpt + " --out " + out + " --format pth");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("vjepa-export: reading " + ckpt + "\n"));
  EXPECT_THAT(result.output, HasSubstr("vjepa-export: wrote " + out));
  EXPECT_THAT(result.output,
              HasSubstr("step 1000, epoch 3, encoder 5 / predictor 5 / target_encoder 5 tensors"));

  const std::string bytes = ReadBytes(out);
  const auto dict =
      torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end())).toGenericDict();
  EXPECT_EQ(dict.at("epoch").toInt(), 3);
  const auto predictor = dict.at("predictor").toGenericDict();
  EXPECT_TRUE(torch::equal(predictor.at("module.backbone.mask_tokens.1").toTensor(),
                           c.predictor[2].tensor));

  if (!HavePythonTorch()) GTEST_SKIP() << "python3-torch missing: torch.load not checked";
  const RunResult python = RunScript(kTorchLoader, out);
  ASSERT_EQ(python.exit_code, 0) << python.output;
  EXPECT_THAT(python.output, HasSubstr(ExpectedModelLines("predictor", c.predictor)));
}

}  // namespace
}  // namespace vjepa::checkpoint
