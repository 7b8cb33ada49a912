// gelu_mlp_aoti: run an AOTInductor package exported by opkit (e.g. examples/gelu_mlp.py) with the
// PyTorch op library, the way deployment code would: libtorch, no Python.
//
//   gelu_mlp_aoti MODEL.pt2 LIBRARY_DIR [BATCH]
//
// LIBRARY_DIR holds libopkit_torch_schemas.so (the ops' schemas, which Python's torch.library.custom_op
// defines otherwise) and libopkit_torch.so (their CPU kernels); both are loaded before the package, whose
// graph calls each opkit op through torch's dispatcher. The input is a float32 [BATCH, features] tensor
// filled with x[i] = sin(0.01 * i) (so a test can rebuild it in PyTorch); the output is printed as
// "shape d0 d1 ..." and then its values. Exit codes: 0 ok, 1 torch or model error, 2 usage.
#include <dlfcn.h>

#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

void load_op_library(const std::string& path) {
  // RTLD_GLOBAL: the libraries register into libtorch's dispatcher when they load (static initializers).
  if (dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr)
    throw std::runtime_error("cannot load " + path + ": " + dlerror());
}

int run(const std::string& model, const std::string& lib_dir, int64_t batch) {
  load_op_library(lib_dir + "/libopkit_torch_schemas.so");
  load_op_library(lib_dir + "/libopkit_torch.so");
  c10::InferenceMode guard;
  torch::inductor::AOTIModelPackageLoader loader(model);
  const int64_t features = 64;  // gelu_mlp.py's d_in
  at::Tensor x = torch::sin(torch::arange(batch * features, torch::kFloat32) * 0.01f).reshape({batch, features});
  std::vector<at::Tensor> outputs = loader.run({x});
  const at::Tensor y = outputs.at(0).contiguous();
  std::printf("shape");
  for (int64_t d : y.sizes()) std::printf(" %lld", static_cast<long long>(d));
  std::printf("\n");
  const float* data = y.data_ptr<float>();
  for (int64_t i = 0; i < y.numel(); ++i) std::printf("%.9g\n", static_cast<double>(data[i]));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: %s MODEL.pt2 LIBRARY_DIR [BATCH]\n", argv[0]);
    return 2;
  }
  const int64_t batch = argc == 4 ? std::atoll(argv[3]) : 8;
  if (batch < 1) {
    std::fprintf(stderr, "BATCH must be a positive integer, got %s\n", argv[3]);
    return 2;
  }
  try {
    return run(argv[1], argv[2], batch);
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "torch error: %s\n", e.what_without_backtrace());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  }
  return 1;
}
