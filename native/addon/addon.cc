// The node-addon-api binding: converts a JS plan (lib/plan.ts) to mnq::PlanDesc,
// wraps mnq::Model, and runs it off the main thread. No model logic here.
//
// Context-aware (Napi::Addon): every Node environment (main thread, each
// worker_thread) gets its own instance data. C++ exceptions never cross into
// V8: type errors in the plan become TypeErrors naming the field, everything
// the runtime throws becomes an Error with its message.
//
// Worker termination: `worker.terminate()` or `process.exit()` in a worker stops its environment while runs
// and loads may be in flight. Node waits for their libuv work, then calls OnOK / OnError from
// FreeEnvironment, where no JS value can be made and no exception thrown. So: the work holds the model
// (shared_ptr) until it ends, OnOK / OnError never throw (settle()), and an exception that cannot be thrown
// into a terminating environment is dropped instead of aborting the process (node-addon-api's
// NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS, which also covers runSync returning into a terminated worker).
#define NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
#include <napi.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../runtime/model.h"

#ifndef NAPI_CPP_EXCEPTIONS
#error "mnq's addon needs C++ exceptions: define NAPI_CPP_EXCEPTIONS (see binding.gyp)"
#endif

namespace {

using mnq::Model;

// ------------------------------------------------------------ error mapping
// Runs fn; turns C++ exceptions other than Napi::Error into JS Errors.
template <typename Fn>
auto guard(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(env, "mnq: out of memory");
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

[[noreturn]] void type_error(Napi::Env env, const std::string& path, const std::string& expected) {
  throw Napi::TypeError::New(env, path + " must be " + expected);
}

// Resolves or rejects a promise from OnOK / OnError: `fn` settles it; a Napi::Error from it rejects the
// promise with that error. Never throws: when the environment is terminating (a worker stopped mid-run),
// neither can be done and nobody is left to receive the result, so it is dropped.
template <typename Fn>
void settle(Napi::Env env, Napi::Promise::Deferred& deferred, Fn&& fn) noexcept {
  try {
    Napi::HandleScope scope(env);
    try {
      fn();
    } catch (const Napi::Error& e) {
      deferred.Reject(e.Value());
    }
  } catch (...) {
  }
}

// ------------------------------------------------------- JS plan -> PlanDesc
class PlanReader {
 public:
  explicit PlanReader(Napi::Env env) : env_(env) {}

  Napi::Object object(const Napi::Value& v, const std::string& path) {
    if (!v.IsObject() || v.IsArray() || v.IsTypedArray()) type_error(env_, path, "an object");
    return v.As<Napi::Object>();
  }
  Napi::Array array(const Napi::Value& v, const std::string& path) {
    if (!v.IsArray()) type_error(env_, path, "an array");
    return v.As<Napi::Array>();
  }
  double number(const Napi::Value& v, const std::string& path) {
    if (!v.IsNumber()) type_error(env_, path, "a number");
    return v.As<Napi::Number>().DoubleValue();
  }
  float float32(const Napi::Value& v, const std::string& path) {
    return static_cast<float>(number(v, path));
  }
  int64_t integer(const Napi::Value& v, const std::string& path, double lo, double hi) {
    double d = number(v, path);
    if (!std::isfinite(d) || std::floor(d) != d || d < lo || d > hi) {
      type_error(env_, path, "an integer in [" + fmt(lo) + ", " + fmt(hi) + "], got " + fmt(d));
    }
    return static_cast<int64_t>(d);
  }
  int int32(const Napi::Value& v, const std::string& path) {
    return static_cast<int>(integer(v, path, -2147483648.0, 2147483647.0));
  }
  bool boolean(const Napi::Value& v, const std::string& path) {
    if (!v.IsBoolean()) type_error(env_, path, "a boolean");
    return v.As<Napi::Boolean>().Value();
  }
  std::string string(const Napi::Value& v, const std::string& path) {
    if (!v.IsString()) type_error(env_, path, "a string");
    return v.As<Napi::String>().Utf8Value();
  }
  template <typename T>
  std::vector<T> typed(const Napi::Value& v, const std::string& path, napi_typedarray_type type,
                       const char* type_name) {
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) type_error(env_, path, type_name);
    auto a = v.As<Napi::TypedArrayOf<T>>();
    std::vector<T> out(a.ElementLength());
    if (!out.empty()) std::memcpy(out.data(), a.Data(), out.size() * sizeof(T));
    return out;
  }
  std::vector<int> ids(const Napi::Value& v, const std::string& path) {
    Napi::Array a = array(v, path);
    std::vector<int> out(a.Length());
    for (uint32_t i = 0; i < a.Length(); ++i) out[i] = int32(a.Get(i), path + "[" + std::to_string(i) + "]");
    return out;
  }

  mnq::PlanDesc plan(const Napi::Value& v) {
    mnq::PlanDesc p;
    Napi::Object o = object(v, "plan");
    Napi::Array tensors = array(o.Get("tensors"), "plan.tensors");
    p.tensors.resize(tensors.Length());
    for (uint32_t i = 0; i < tensors.Length(); ++i) {
      const std::string path = "plan.tensors[" + std::to_string(i) + "]";
      Napi::Object t = object(tensors.Get(i), path);
      mnq::PlanTensor& pt = p.tensors[i];
      pt.name = string(t.Get("name"), path + ".name");
      pt.h = int32(t.Get("h"), path + ".h");
      pt.w = int32(t.Get("w"), path + ".w");
      pt.c = int32(t.Get("c"), path + ".c");
      pt.scale = float32(t.Get("scale"), path + ".scale");
      pt.zero_point = int32(t.Get("zeroPoint"), path + ".zeroPoint");
      if (t.Has("dtype") && !t.Get("dtype").IsUndefined()) {
        const int d = int32(t.Get("dtype"), path + ".dtype");
        if (d != static_cast<int>(mnq::Dtype::int8) && d != static_cast<int>(mnq::Dtype::int16))
          type_error(env_, path + ".dtype", "a Dtype (0 int8, 1 int16), got " + std::to_string(d));
        pt.dtype = static_cast<mnq::Dtype>(d);
      }
    }
    Napi::Array ops = array(o.Get("ops"), "plan.ops");
    p.ops.resize(ops.Length());
    for (uint32_t i = 0; i < ops.Length(); ++i) op(ops.Get(i), "plan.ops[" + std::to_string(i) + "]", &p.ops[i]);
    p.input = int32(o.Get("input"), "plan.input");
    const int layout = int32(o.Get("inputLayout"), "plan.inputLayout");
    if (layout != static_cast<int>(mnq::InputLayout::nchw) && layout != static_cast<int>(mnq::InputLayout::nhwc))
      type_error(env_, "plan.inputLayout", "an InputLayout (0 nchw, 1 nhwc), got " + std::to_string(layout));
    p.input_layout = static_cast<mnq::InputLayout>(layout);
    p.outputs = ids(o.Get("outputs"), "plan.outputs");
    return p;
  }

 private:
  void op(const Napi::Value& v, const std::string& path, mnq::PlanOp* op) {
    Napi::Object o = object(v, path);
    const int type = int32(o.Get("type"), path + ".type");
    if (type < 0 || type > static_cast<int>(mnq::PlanOpType::max_pool))
      type_error(env_, path + ".type", "a PlanOpType (0..6), got " + std::to_string(type));
    op->type = static_cast<mnq::PlanOpType>(type);
    op->name = string(o.Get("name"), path + ".name");
    op->inputs = ids(o.Get("inputs"), path + ".inputs");
    op->output = int32(o.Get("output"), path + ".output");
    if (op->type == mnq::PlanOpType::conv || op->type == mnq::PlanOpType::max_pool) {
      const std::string sp = path + ".shape";
      Napi::Object s = object(o.Get("shape"), sp);
      mnq::ConvShape& c = op->shape;
      const std::pair<const char*, int*> fields[] = {
          {"inH", &c.in_h}, {"inW", &c.in_w}, {"inC", &c.in_c}, {"outH", &c.out_h}, {"outW", &c.out_w},
          {"outC", &c.out_c}, {"kernelH", &c.kernel_h}, {"kernelW", &c.kernel_w}, {"strideH", &c.stride_h},
          {"strideW", &c.stride_w}, {"dilationH", &c.dilation_h}, {"dilationW", &c.dilation_w},
          {"padTop", &c.pad_top}, {"padLeft", &c.pad_left}, {"padBottom", &c.pad_bottom},
          {"padRight", &c.pad_right}};
      for (const auto& f : fields) *f.second = int32(s.Get(f.first), sp + "." + f.first);
      if (op->type == mnq::PlanOpType::conv) {
        op->groups = int32(o.Get("groups"), path + ".groups");
        if (o.Has("inputPieces") && !o.Get("inputPieces").IsUndefined())
          op->input_pieces = int32(o.Get("inputPieces"), path + ".inputPieces");
      }
    }
    if (op->type == mnq::PlanOpType::conv || op->type == mnq::PlanOpType::fully_connected) {
      op->weights = typed<int8_t>(o.Get("weights"), path + ".weights", napi_int8_array, "an Int8Array");
      op->w_zero_point = typed<int32_t>(o.Get("wZeroPoint"), path + ".wZeroPoint", napi_int32_array, "an Int32Array");
      op->w_scale = typed<float>(o.Get("wScale"), path + ".wScale", napi_float32_array, "a Float32Array");
      op->bias = typed<int32_t>(o.Get("bias"), path + ".bias", napi_int32_array, "an Int32Array");
    }
    op->qmin = int32(o.Get("qmin"), path + ".qmin");
    op->qmax = int32(o.Get("qmax"), path + ".qmax");
    if (o.Has("addOffset") && !o.Get("addOffset").IsUndefined())
      op->add_offset = int32(o.Get("addOffset"), path + ".addOffset");
    op->has_activation = boolean(o.Get("hasActivation"), path + ".hasActivation");
    {
      const std::string ap = path + ".activation";
      Napi::Object a = object(o.Get("activation"), ap);
      op->activation.fn = static_cast<mnq::UnaryFn>(int32(a.Get("fn"), ap + ".fn"));
      op->activation.p0 = float32(a.Get("p0"), ap + ".p0");
      op->activation.p1 = float32(a.Get("p1"), ap + ".p1");
    }
    op->act_scale = float32(o.Get("actScale"), path + ".actScale");
    op->act_zero_point = int32(o.Get("actZeroPoint"), path + ".actZeroPoint");
    Napi::Value table = o.Get("table");
    if (!table.IsUndefined()) op->table = typed<int8_t>(table, path + ".table", napi_int8_array, "an Int8Array");
  }

  static std::string fmt(double d) {
    std::string s = std::to_string(d);
    if (s.find('.') != std::string::npos) {
      while (!s.empty() && s.back() == '0') s.pop_back();
      if (!s.empty() && s.back() == '.') s.pop_back();
    }
    return s;
  }

  Napi::Env env_;
};

// ------------------------------------------------------------ async runs
class RunWorker : public Napi::AsyncWorker {
 public:
  // i8: the int8 NHWC input (float inputs are quantized by the caller, Model::quantize_input).
  RunWorker(Napi::Env env, std::shared_ptr<const Model> model, std::vector<int8_t> i8, int batch)
      : Napi::AsyncWorker(env, "mnq:run"),
        deferred_(Napi::Promise::Deferred::New(env)),
        model_(std::move(model)),
        i8_(std::move(i8)),
        batch_(batch) {}

  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      outputs_ = model_->run_int8(i8_.data(), batch_);
    } catch (const std::bad_alloc&) {
      SetError("mnq: out of memory");
    } catch (const std::exception& e) {
      SetError(e.what());
    }
    // Free the input copy now, on the worker thread.
    std::vector<int8_t>().swap(i8_);
  }

  void OnOK() override;
  void OnError(const Napi::Error& e) override {
    settle(Env(), deferred_, [&] { deferred_.Reject(e.Value()); });
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<const Model> model_;  // keeps the model alive through dispose()
  std::vector<int8_t> i8_;
  int batch_;
  std::vector<std::vector<int8_t>> outputs_;
};

Napi::Array to_js(Napi::Env env, const std::vector<std::vector<int8_t>>& outputs) {
  Napi::Array arr = Napi::Array::New(env, outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    Napi::Int8Array a = Napi::Int8Array::New(env, outputs[i].size());
    if (!outputs[i].empty()) std::memcpy(a.Data(), outputs[i].data(), outputs[i].size());
    arr.Set(static_cast<uint32_t>(i), a);
  }
  return arr;
}

void RunWorker::OnOK() {
  Napi::Env env = Env();
  settle(env, deferred_, [&] { deferred_.Resolve(to_js(env, outputs_)); });
}

// ------------------------------------------------------------ the model object
class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {InstanceMethod<&ModelWrap::run>("run"),
                        InstanceMethod<&ModelWrap::run_sync>("runSync"),
                        InstanceMethod<&ModelWrap::run_int8>("runInt8"),
                        InstanceMethod<&ModelWrap::run_int8_sync>("runInt8Sync"),
                        InstanceMethod<&ModelWrap::dispose>("dispose"),
                        InstanceAccessor<&ModelWrap::isa>("isa"),
                        InstanceAccessor<&ModelWrap::threads>("threads"),
                        InstanceAccessor<&ModelWrap::arena_bytes_per_image>("arenaBytesPerImage"),
                        InstanceAccessor<&ModelWrap::weight_bytes>("weightBytes"),
                        InstanceAccessor<&ModelWrap::window_bytes_per_thread>("windowBytesPerThread"),
                        InstanceAccessor<&ModelWrap::executor>("executor"),
                        InstanceAccessor<&ModelWrap::fused_groups>("fusedGroups"),
                        InstanceAccessor<&ModelWrap::disposed>("disposed")});
  }

  explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {}

  void set_model(std::shared_ptr<const Model> m) {
    model_ = std::move(m);
    isa_ = mnq::isa_name(model_->isa());
    threads_ = model_->threads();
    arena_bytes_per_image_ = static_cast<double>(model_->arena_bytes_per_image());
    weight_bytes_ = static_cast<double>(model_->weight_bytes());
    window_bytes_per_thread_ = static_cast<double>(model_->window_bytes_per_thread());
    executor_ = mnq::executor_name(model_->executor());
    fused_groups_ = static_cast<double>(model_->fused_groups().size());
  }

 private:
  std::shared_ptr<const Model> live(Napi::Env env) const {
    if (!model_) throw Napi::Error::New(env, "mnq: this model has been disposed (or was not made by createModel)");
    return model_;
  }

  // Checks the input and batch; returns the batch. `nhwc`: the input's layout (for messages).
  template <typename T>
  int check_input(const Napi::CallbackInfo& info, const Model& m, napi_typedarray_type type, const std::string& tname,
                  bool nhwc, Napi::TypedArrayOf<T>* out) {
    Napi::Env env = info.Env();
    Napi::Value v = info[0];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
      throw Napi::TypeError::New(env, "input must be " + tname);
    *out = v.As<Napi::TypedArrayOf<T>>();
    const size_t per = m.input_elements();
    const size_t len = out->ElementLength();
    int batch;
    if (info.Length() < 2 || info[1].IsUndefined()) {
      if (len == 0 || len % per != 0) {
        const mnq::PlanTensor& in = m.input();
        const std::string c = "c " + std::to_string(in.c), hw = "h " + std::to_string(in.h) + " x w " + std::to_string(in.w);
        throw Napi::RangeError::New(env, "input has " + std::to_string(len) + " elements, expected a multiple of " +
                                             std::to_string(per) + " (one image: " +
                                             (nhwc ? hw + " x " + c : c + " x " + hw) + ")");
      }
      if (len / per > 1000000) throw Napi::RangeError::New(env, "batch too large");
      batch = static_cast<int>(len / per);
    } else {
      if (!info[1].IsNumber()) throw Napi::TypeError::New(env, "batch must be a number");
      double b = info[1].As<Napi::Number>().DoubleValue();
      if (!std::isfinite(b) || std::floor(b) != b || b < 1 || b > 1000000)
        throw Napi::RangeError::New(env, "batch must be an integer >= 1, got " + info[1].ToString().Utf8Value());
      batch = static_cast<int>(b);
      if (len != per * static_cast<size_t>(batch))
        throw Napi::RangeError::New(env, "input has " + std::to_string(len) + " elements, expected batch " +
                                             std::to_string(batch) + " x " + std::to_string(per) + " = " +
                                             std::to_string(per * static_cast<size_t>(batch)));
    }
    return batch;
  }

  Napi::Value run_impl(const Napi::CallbackInfo& info, bool int8, bool async) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      std::shared_ptr<const Model> m = live(env);
      std::vector<int8_t> i8;
      int batch;
      // The input is copied: the caller may reuse its buffer at once and it is never written.
      if (int8) {
        Napi::TypedArrayOf<int8_t> a;
        batch = check_input<int8_t>(info, *m, napi_int8_array, "an Int8Array (NHWC, quantized)", true, &a);
        if (!async) return to_js(env, m->run_int8(a.Data(), batch));
        i8.assign(a.Data(), a.Data() + a.ElementLength());
      } else {
        Napi::TypedArrayOf<float> a;
        const bool nhwc = m->input_layout() == mnq::InputLayout::nhwc;
        batch = check_input<float>(info, *m, napi_float32_array, nhwc ? "a Float32Array (NHWC)" : "a Float32Array (NCHW)",
                                   nhwc, &a);
        if (!async) return to_js(env, m->run(a.Data(), batch));
        // Quantizing here is cheaper than copying the float input (4x the bytes),
        // and the result is the same as run()'s own quantization bit for bit.
        i8.resize(a.ElementLength());
        m->quantize_input(a.Data(), batch, i8.data());
      }
      auto* w = new RunWorker(env, m, std::move(i8), batch);
      Napi::Promise p = w->promise();
      w->Queue();
      return p;
    });
  }

  Napi::Value run(const Napi::CallbackInfo& info) { return run_impl(info, false, true); }
  Napi::Value run_sync(const Napi::CallbackInfo& info) { return run_impl(info, false, false); }
  Napi::Value run_int8(const Napi::CallbackInfo& info) { return run_impl(info, true, true); }
  Napi::Value run_int8_sync(const Napi::CallbackInfo& info) { return run_impl(info, true, false); }

  // Drops this object's reference; pending runs keep the model alive until they finish.
  Napi::Value dispose(const Napi::CallbackInfo& info) {
    model_.reset();
    return info.Env().Undefined();
  }
  Napi::Value isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), isa_); }
  Napi::Value threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), threads_); }
  Napi::Value disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !model_); }
  Napi::Value arena_bytes_per_image(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), arena_bytes_per_image_);
  }
  Napi::Value weight_bytes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), weight_bytes_); }
  Napi::Value window_bytes_per_thread(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), window_bytes_per_thread_);
  }
  Napi::Value executor(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), executor_); }
  Napi::Value fused_groups(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fused_groups_); }

  std::shared_ptr<const Model> model_;
  // Kept after dispose(), like isa and threads.
  std::string isa_;
  int threads_ = 0;
  double arena_bytes_per_image_ = 0, weight_bytes_ = 0, window_bytes_per_thread_ = 0, fused_groups_ = 0;
  std::string executor_;
};

// ------------------------------------------------------------ module
class MnqAddon : public Napi::Addon<MnqAddon> {
 public:
  MnqAddon(Napi::Env env, Napi::Object exports) {
    model_class_ = Napi::Persistent(ModelWrap::define(env));
    DefineAddon(exports, {InstanceMethod<&MnqAddon::create_model>("createModel"),
                          InstanceMethod<&MnqAddon::create_model_sync>("createModelSync"),
                          InstanceMethod<&MnqAddon::supported_isas>("supportedIsas"),
                          InstanceMethod<&MnqAddon::default_isa>("defaultIsa")});
  }

 private:
  // createModel(plan, { threads?: number = 1, isa?: string = defaultIsa(),
  //                     executor?: 'fused' | 'layers' = MNQ_EXECUTOR or 'fused' }) -> Promise<NativeModel>:
  // reads the plan on the calling thread (type errors throw at once), then
  // validates it and packs the weights on a libuv worker thread.
  // createModelSync(plan, options) -> NativeModel: the same on the calling thread.
  struct CreateArgs {
    mnq::PlanDesc plan;
    mnq::Isa isa = mnq::Isa::scalar;
    int threads = 1;
    mnq::Executor executor = mnq::Executor::fused;
  };

  static CreateArgs read_create_args(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    PlanReader r(env);
    CreateArgs a;
    bool have_isa = false, have_executor = false;
    if (info.Length() >= 2 && !info[1].IsUndefined()) {
      Napi::Object opts = r.object(info[1], "options");
      Napi::Value t = opts.Get("threads");
      if (!t.IsUndefined()) a.threads = static_cast<int>(r.integer(t, "options.threads", 1, 256));
      Napi::Value i = opts.Get("isa");
      if (!i.IsUndefined()) {
        std::string name = r.string(i, "options.isa");
        if (!mnq::parse_isa(name, &a.isa))
          throw Napi::TypeError::New(env, "options.isa must be one of scalar, avx2, avxvnni, avx512vnni, neon, neondot; got '" +
                                              name + "'");
        have_isa = true;
      }
      Napi::Value e = opts.Get("executor");
      if (!e.IsUndefined()) {
        const std::string name = r.string(e, "options.executor");
        if (name != "fused" && name != "layers")
          throw Napi::TypeError::New(env, "options.executor must be 'fused' or 'layers'; got '" + name + "'");
        a.executor = name == "layers" ? mnq::Executor::layers : mnq::Executor::fused;
        have_executor = true;
      }
    }
    a.plan = r.plan(info.Length() >= 1 ? info[0] : env.Undefined());
    if (!have_isa) a.isa = mnq::default_isa();
    if (!have_executor) a.executor = mnq::default_executor();
    return a;
  }

  class CreateWorker : public Napi::AsyncWorker {
   public:
    CreateWorker(Napi::Env env, CreateArgs args, Napi::FunctionReference* model_class)
        : Napi::AsyncWorker(env, "mnq:createModel"),
          deferred_(Napi::Promise::Deferred::New(env)),
          args_(std::move(args)),
          model_class_(model_class) {}
    Napi::Promise promise() const { return deferred_.Promise(); }
    void Execute() override {
      try {
        model_ = std::make_shared<const Model>(args_.plan, args_.isa, args_.threads, args_.executor);
      } catch (const std::bad_alloc&) {
        SetError("mnq: out of memory");
      } catch (const std::exception& e) {
        SetError(e.what());
      }
      args_.plan = mnq::PlanDesc();  // the model packed its own copy of the weights
    }
    void OnOK() override {
      settle(Env(), deferred_, [&] {
        Napi::Object obj = model_class_->New({});
        ModelWrap::Unwrap(obj)->set_model(std::move(model_));
        deferred_.Resolve(obj);
      });
    }
    void OnError(const Napi::Error& e) override {
      settle(Env(), deferred_, [&] { deferred_.Reject(e.Value()); });
    }

   private:
    Napi::Promise::Deferred deferred_;
    CreateArgs args_;
    Napi::FunctionReference* model_class_;
    std::shared_ptr<const Model> model_;
  };

  Napi::Value create_model(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      auto* w = new CreateWorker(env, read_create_args(info), &model_class_);
      Napi::Promise p = w->promise();
      w->Queue();
      return p;
    });
  }

  Napi::Value create_model_sync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      CreateArgs a = read_create_args(info);
      auto model = std::make_shared<const Model>(a.plan, a.isa, a.threads, a.executor);
      Napi::Object obj = model_class_.New({});
      ModelWrap::Unwrap(obj)->set_model(std::move(model));
      return obj;
    });
  }

  Napi::Value supported_isas(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      std::vector<mnq::Isa> isas = mnq::supported_isas();
      Napi::Array a = Napi::Array::New(env, isas.size());
      for (size_t i = 0; i < isas.size(); ++i) a.Set(static_cast<uint32_t>(i), mnq::isa_name(isas[i]));
      return a;
    });
  }

  Napi::Value default_isa(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value { return Napi::String::New(env, mnq::isa_name(mnq::default_isa())); });
  }

  Napi::FunctionReference model_class_;
};

}  // namespace

NODE_API_ADDON(MnqAddon)
