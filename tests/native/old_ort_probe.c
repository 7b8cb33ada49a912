/* Calls an op library's RegisterCustomOps the way an onnxruntime older than the library's API
 * version would: GetApi(v) is NULL for every v above `max_api`. Prints the error status' message.
 *
 *   old_ort_probe LIBONNXRUNTIME.so.1.x.y LIBOPS.so MAX_API VERSION_STRING
 * Exit: 0 RegisterCustomOps returned an error (printed), 1 it returned success, 2 setup failed. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "onnxruntime_c_api.h"

static const OrtApiBase* real_base;
static unsigned max_api;
static const char* fake_version_string;

static const OrtApi* ORT_API_CALL fake_get_api(uint32_t version) {
  return version > max_api ? NULL : real_base->GetApi(version);
}
static const char* ORT_API_CALL fake_get_version(void) { return fake_version_string; }

int main(int argc, char** argv) {
  if (argc != 5) return 2;
  void* ort = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
  if (!ort) { fprintf(stderr, "%s\n", dlerror()); return 2; }
  const OrtApiBase* (*get_base)(void) = (const OrtApiBase* (*)(void))dlsym(ort, "OrtGetApiBase");
  if (!get_base) return 2;
  real_base = get_base();
  max_api = (unsigned)atoi(argv[3]);
  fake_version_string = argv[4];
  OrtApiBase fake = {fake_get_api, fake_get_version};
  void* lib = dlopen(argv[2], RTLD_NOW);
  if (!lib) { fprintf(stderr, "%s\n", dlerror()); return 2; }
  OrtStatus* (*reg)(OrtSessionOptions*, const OrtApiBase*) =
      (OrtStatus * (*)(OrtSessionOptions*, const OrtApiBase*)) dlsym(lib, "RegisterCustomOps");
  if (!reg) return 2;
  OrtStatus* status = reg(NULL, &fake);
  if (!status) { puts("no error"); return 1; }
  const OrtApi* api = real_base->GetApi(1);
  printf("%s\n", api->GetErrorMessage(status));
  api->ReleaseStatus(status);
  return 0;
}
