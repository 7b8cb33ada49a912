// gelu_mlp_app: run a model exported by opkit (e.g. examples/gelu_mlp.py) with its op library,
// the way deployment code would: ONNX Runtime's C++ API, no Python.
//
//   gelu_mlp_app MODEL.onnx LIBRARY.so [BATCH]
//
// The input is a float32 [BATCH, features] tensor filled with x[i] = sin(0.01 * i) (so a test can
// rebuild it in PyTorch); the output is printed as "shape d0 d1 ..." and then its values.
// Exit codes: 0 ok, 1 ONNX Runtime or model error, 2 usage.
#include <onnxruntime_cxx_api.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s;
  for (int64_t d : shape) s += (s.empty() ? "" : " ") + std::to_string(d);
  return s;
}

int run(const char* model_path, const char* library_path, int64_t batch) {
  // One Env per process; objects are RAII wrappers, released in reverse order on every path.
  Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "gelu_mlp_app");
  Ort::SessionOptions options;
  options.SetIntraOpNumThreads(1);
  // Registers the op library's domains (its RegisterCustomOps). It must be registered before the
  // session is created; the library stays loaded for the life of the process.
  options.RegisterCustomOpsLibrary(library_path);
  Ort::Session session(env, model_path, options);

  if (session.GetInputCount() != 1 || session.GetOutputCount() != 1)
    throw std::runtime_error("expected a model with one input and one output, got " +
                             std::to_string(session.GetInputCount()) + " and " +
                             std::to_string(session.GetOutputCount()));
  Ort::AllocatorWithDefaultOptions allocator;
  Ort::AllocatedStringPtr input_name = session.GetInputNameAllocated(0, allocator);
  Ort::AllocatedStringPtr output_name = session.GetOutputNameAllocated(0, allocator);

  // Check the input's declared type before feeding it: float32, rank 2, [batch (dynamic), features].
  Ort::TypeInfo input_info = session.GetInputTypeInfo(0);
  auto tensor_info = input_info.GetTensorTypeAndShapeInfo();
  if (tensor_info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
    throw std::runtime_error(std::string("input '") + input_name.get() + "' is not float32");
  std::vector<int64_t> shape = tensor_info.GetShape();
  if (shape.size() != 2 || shape[1] <= 0)
    throw std::runtime_error(std::string("input '") + input_name.get() + "' is not [batch, features]");
  shape[0] = batch;

  std::vector<float> x(static_cast<size_t>(shape[0] * shape[1]));
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.01f * static_cast<float>(i));
  // The tensor borrows x's memory: x must outlive the Run call.
  Ort::MemoryInfo cpu = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  Ort::Value input = Ort::Value::CreateTensor<float>(cpu, x.data(), x.size(), shape.data(), shape.size());

  const char* input_names[] = {input_name.get()};
  const char* output_names[] = {output_name.get()};
  std::vector<Ort::Value> outputs =
      session.Run(Ort::RunOptions{nullptr}, input_names, &input, 1, output_names, 1);

  Ort::Value& y = outputs.at(0);
  auto y_info = y.GetTensorTypeAndShapeInfo();
  if (!y.IsTensor() || y_info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
    throw std::runtime_error(std::string("output '") + output_name.get() + "' is not a float32 tensor");
  const float* values = y.GetTensorData<float>();
  const size_t count = y_info.GetElementCount();
  std::printf("shape %s\n", shape_text(y_info.GetShape()).c_str());
  for (size_t i = 0; i < count; ++i) std::printf("%.9g\n", static_cast<double>(values[i]));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: %s MODEL.onnx LIBRARY.so [BATCH]\n", argv[0]);
    return 2;
  }
  char* end = nullptr;
  const long batch = argc == 4 ? std::strtol(argv[3], &end, 10) : 8;
  if ((argc == 4 && *end != '\0') || batch < 1) {
    std::fprintf(stderr, "BATCH must be a positive integer, got '%s'\n", argv[3]);
    return 2;
  }
  try {
    return run(argv[1], argv[2], batch);
  } catch (const Ort::Exception& e) {  // ONNX Runtime: a bad model, a missing op, a kernel's error
    std::fprintf(stderr, "onnxruntime error (code %d): %s\n", static_cast<int>(e.GetOrtErrorCode()), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
