// zen-crdt 1.0 for C++17: one header over the C API (zen_crdt.h), nothing underneath but
// that API. RAII contexts, typed values, range-for over change events and outbound
// messages, and errors as values that work with and without exceptions.
//
//   #include <zen_crdt.hpp>
//   auto ctx = zen::Context::create(1).value();          // peer id 1
//   auto pos = ctx.create<zen::Vec3>("unit/7/pos").value();
//   if (auto s = pos.set({1, 2, 3}); !s) std::puts(s.error().what());
//   ctx.tick(now_ms).value();
//   for (const auto& m : ctx.outbound()) send(m.to, m.data(), m.size());
//   for (const zen::Change& c : ctx.changes()) if (c.is(pos)) draw(c.new_value().as<zen::Vec3>());
//
// OWNERSHIP. `Context` is move-only and owns its C context: the destructor frees it (and
// with it every value handle of it and every merge registered on it). A moved-from or
// closed Context is safe to destroy and to call: calls report ZEN_ERR_INVALID_HANDLE.
// `Value<T>` is a copyable view (two integers); it never owns anything and outliving
// its context is safe: calls then report ZEN_ERR_INVALID_HANDLE. `Net` owns a simulated
// network, not the contexts attached to it.
//
// THREADS. As for the C API: every call may come from any thread, and calls on one
// context are serialised by the context's own lock (a network thread may `receive`
// while the game thread sets and ticks). Two exceptions of this wrapper: `outbound()`
// reuses one buffer per Context, and `changes()` borrows event memory until the next
// event, so each of them is for one thread at a time. Errors are read on the thread
// that failed, at once, into the `Error` the call returns.
//
// ERRORS. Fallible calls return `[[nodiscard]]` `Status` or `Result<T>` (expected-like:
// `has_value()`, `operator bool`, `value()`, `error()`). `value()` on an error throws
// `zen::Error` when exceptions are enabled, and otherwise prints the error to stderr and
// calls std::abort(). The header compiles and works with -fno-exceptions.
//
// YOUR OWN TYPES. Specialise `zen::value_traits` to store a type of your engine as one
// of the built-in types (bool, std::int64_t, double, std::string,
// std::vector<std::uint8_t>, zen::Vec2/Vec3/Vec4/Quat/Color):
//
//   template <> struct zen::value_traits<glm::vec3> {
//     using wire = zen::Vec3;
//     static wire to_wire(const glm::vec3& v) { return {v.x, v.y, v.z}; }
//     static glm::vec3 from_wire(const wire& w) { return {w.x, w.y, w.z}; }
//   };
//   auto pos = ctx.create<glm::vec3>("unit/7/pos").value();
#ifndef ZEN_CRDT_HPP
#define ZEN_CRDT_HPP

#include "zen_crdt.h"
#if __has_include("zen_crdt_sim.h")
#include "zen_crdt_sim.h"
#define ZEN_CRDT_HPP_SIM 1
#endif

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define ZEN_CRDT_HPP_EXCEPTIONS 1
#endif

namespace zen {

// ---- enums and plain types --------------------------------------------------------------

enum class Type : std::uint32_t {
  None = ZEN_TYPE_NONE,
  Bool = ZEN_TYPE_BOOL,
  I64 = ZEN_TYPE_I64,
  F64 = ZEN_TYPE_F64,
  String = ZEN_TYPE_STRING,
  Bytes = ZEN_TYPE_BYTES,
  Vec2 = ZEN_TYPE_VEC2,
  Vec3 = ZEN_TYPE_VEC3,
  Vec4 = ZEN_TYPE_VEC4,
  Color = ZEN_TYPE_COLOR,
  Quat = ZEN_TYPE_QUAT,
};

enum class Mode : std::uint32_t {
  FastLocal = ZEN_MODE_FAST_LOCAL,
  WaitForSync = ZEN_MODE_WAIT_FOR_SYNC,
};

enum class Policy : std::uint32_t {
  LastWriterWins = ZEN_POLICY_LAST_WRITER_WINS,
  Max = ZEN_POLICY_MAX,
  Min = ZEN_POLICY_MIN,
  TakeAverage = ZEN_POLICY_TAKE_AVERAGE,
  Custom = ZEN_POLICY_CUSTOM,
};

enum class SyncState : std::uint32_t {
  LocalOnly = ZEN_STATE_LOCAL_ONLY,
  Syncing = ZEN_STATE_SYNCING,
  Converged = ZEN_STATE_CONVERGED,
  Conflicted = ZEN_STATE_CONFLICTED,
};

enum class ChangeKind : std::uint32_t {
  Created = ZEN_CHANGE_CREATED,
  Modified = ZEN_CHANGE_MODIFIED,
  StateChanged = ZEN_CHANGE_STATE_CHANGED,
  Removed = ZEN_CHANGE_REMOVED,
  // A peer re-announced the value unchanged (`Value::touch`): "same value, act again".
  Touched = ZEN_CHANGE_TOUCHED,
  // Only the owner of an owner-only value changed (`origin()` is the new owner). An
  // ownership change that comes with a change of the value is that change's event, with
  // `owner_changed()` set.
  OwnerChanged = ZEN_CHANGE_OWNER_CHANGED,
  // This context's write was refused: it is not the owner (the ownership moved before
  // the write went out). `old_value()` is what it showed, `new_value()` what reads show.
  Rejected = ZEN_CHANGE_REJECTED,
};

struct Vec2 {
  float x = 0, y = 0;
};
struct Vec3 {
  float x = 0, y = 0, z = 0;
};
struct Vec4 {
  float x = 0, y = 0, z = 0, w = 0;
};
// A rotation; the identity is (0, 0, 0, 1).
struct Quat {
  float x = 0, y = 0, z = 0, w = 1;
};
struct Color {
  float r = 0, g = 0, b = 0, a = 1;
};

inline bool operator==(const Vec2& a, const Vec2& b) { return a.x == b.x && a.y == b.y; }
inline bool operator==(const Vec3& a, const Vec3& b) { return a.x == b.x && a.y == b.y && a.z == b.z; }
inline bool operator==(const Vec4& a, const Vec4& b) {
  return a.x == b.x && a.y == b.y && a.z == b.z && a.w == b.w;
}
inline bool operator==(const Quat& a, const Quat& b) {
  return a.x == b.x && a.y == b.y && a.z == b.z && a.w == b.w;
}
inline bool operator==(const Color& a, const Color& b) {
  return a.r == b.r && a.g == b.g && a.b == b.b && a.a == b.a;
}
inline bool operator!=(const Vec2& a, const Vec2& b) { return !(a == b); }
inline bool operator!=(const Vec3& a, const Vec3& b) { return !(a == b); }
inline bool operator!=(const Vec4& a, const Vec4& b) { return !(a == b); }
inline bool operator!=(const Quat& a, const Quat& b) { return !(a == b); }
inline bool operator!=(const Color& a, const Color& b) { return !(a == b); }

// Any value, owned: what an `OwnedChange` carries.
using Variant = std::variant<std::monostate, bool, std::int64_t, double, std::string, std::vector<std::uint8_t>,
                             Vec2, Vec3, Vec4, Quat, Color>;

// The library's version as major << 16 | minor << 8 | patch.
inline std::uint32_t version() noexcept { return zen_version(); }

// ---- errors -----------------------------------------------------------------------------

// A failed call: its status and the library's one-line message, read on the failing
// thread when the call returned. Thrown by `value()` when exceptions are enabled.
class Error : public std::exception {
 public:
  Error() = default;
  Error(zen_status_t code, std::string message) : code_(code), message_(std::move(message)) {}
  zen_status_t code() const noexcept { return code_; }
  // The status's name, e.g. "ZEN_ERR_INVALID_HANDLE".
  const char* name() const noexcept { return zen_status_name(static_cast<std::int32_t>(code_)); }
  const std::string& message() const noexcept { return message_; }
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  zen_status_t code_ = ZEN_OK;
  std::string message_;
};

namespace detail {

// The error of a call that just returned `code`, with this thread's message.
inline Error last_error(zen_status_t code) {
  const char* msg = zen_last_error();
  return Error(code, msg != nullptr ? std::string(msg) : std::string());
}

[[noreturn]] inline void fail(const Error& e) {
#ifdef ZEN_CRDT_HPP_EXCEPTIONS
  throw e;
#else
  std::fprintf(stderr, "zen-crdt: value() on an error: %s: %s\n", e.name(), e.what());
  std::abort();
#endif
}

template <class>
inline constexpr bool dependent_false = false;

inline const Error& no_error() noexcept {
  static const Error none;
  return none;
}

}  // namespace detail

// The outcome of a call that returns nothing: success, or an `Error`. A success holds
// no allocation (the common path of a game's writes costs nothing extra).
class [[nodiscard]] Status {
 public:
  Status() noexcept = default;
  explicit Status(Error e) : error_(std::make_shared<const Error>(std::move(e))) {}
  // From a C status: on failure the thread's message is read now.
  static Status from(zen_status_t code) { return code == ZEN_OK ? Status() : Status(detail::last_error(code)); }

  bool has_value() const noexcept { return error_ == nullptr; }
  explicit operator bool() const noexcept { return has_value(); }
  zen_status_t code() const noexcept { return error_ ? error_->code() : ZEN_OK; }
  // The error (a default Error with code ZEN_OK when there is none).
  const Error& error() const noexcept { return error_ ? *error_ : detail::no_error(); }
  // Throws (or aborts without exceptions) if this is an error.
  void value() const {
    if (error_) detail::fail(*error_);
  }

 private:
  std::shared_ptr<const Error> error_;
};

// A `T` or an `Error`.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::in_place_index<0>, std::move(v)) {}  // NOLINT: implicit, like std::expected
  Result(Error e) : v_(std::in_place_index<1>, std::move(e)) {}  // NOLINT
  static Result from(zen_status_t code) { return Result(detail::last_error(code)); }

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }
  zen_status_t code() const noexcept { return has_value() ? ZEN_OK : std::get<1>(v_).code(); }

  // The value; throws `zen::Error` (or aborts without exceptions) if this is an error.
  T& value() & {
    check();
    return std::get<0>(v_);
  }
  const T& value() const& {
    check();
    return std::get<0>(v_);
  }
  T&& value() && {
    check();
    return std::get<0>(std::move(v_));
  }
  T value_or(T fallback) const& { return has_value() ? std::get<0>(v_) : std::move(fallback); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  // The error; on a success, a default Error with code ZEN_OK.
  const Error& error() const noexcept { return has_value() ? detail::no_error() : std::get<1>(v_); }

 private:
  void check() const {
    if (!has_value()) detail::fail(std::get<1>(v_));
  }
  std::variant<T, Error> v_;
};

// ---- value types: the built-in ones and yours -------------------------------------------

// Specialise for your own types (see "YOUR OWN TYPES" at the top): `using wire = <a
// built-in type>;` and static `wire to_wire(const T&)`, `T from_wire(const wire&)`.
template <class T, class = void>
struct value_traits {};

namespace detail {

template <class T>
struct builtin : std::false_type {};

// Reads a string or bytes value into `out`, growing it until it fits (another thread
// may write a longer value between two tries).
template <class Out, class Getter>
inline zen_status_t read_sized(Out& out, Getter get) {
  out.resize(out.capacity() > 32 ? out.capacity() : 32);
  for (;;) {
    std::size_t len = 0;
    zen_status_t s = get(out.data(), out.size(), &len);
    if (s == ZEN_ERR_BUFFER_TOO_SMALL) {
      out.resize(len);
      continue;
    }
    if (s == ZEN_OK) out.resize(len);
    return s;
  }
}

#define ZEN_CRDT_HPP_BUILTIN(T, TAG, SET, GET, TO_C, FROM_C)                                           \
  template <>                                                                                            \
  struct builtin<T> : std::true_type {                                                                   \
    static constexpr Type type = Type::TAG;                                                              \
    static zen_status_t set(zen_context_t c, zen_value_t h, const T& v) noexcept { return SET(c, h, TO_C); } \
    static zen_status_t get(zen_context_t c, zen_value_t h, T& v) noexcept {                             \
      auto raw = FROM_C;                                                                                 \
      zen_status_t s = GET(c, h, &raw);                                                                  \
      if (s == ZEN_OK) v = convert(raw);                                                                 \
      return s;                                                                                          \
    }                                                                                                    \
  };

inline bool convert(bool v) { return v; }
inline std::int64_t convert(std::int64_t v) { return v; }
inline double convert(double v) { return v; }
inline Vec2 convert(zen_vec2_t v) { return {v.x, v.y}; }
inline Vec3 convert(zen_vec3_t v) { return {v.x, v.y, v.z}; }
inline Vec4 convert(zen_vec4_t v) { return {v.x, v.y, v.z, v.w}; }
inline Quat convert(zen_quat_t v) { return {v.x, v.y, v.z, v.w}; }
inline Color convert(zen_color_t v) { return {v.r, v.g, v.b, v.a}; }

ZEN_CRDT_HPP_BUILTIN(bool, Bool, zen_value_set_bool, zen_value_get_bool, v, false)
ZEN_CRDT_HPP_BUILTIN(std::int64_t, I64, zen_value_set_i64, zen_value_get_i64, v, std::int64_t{0})
ZEN_CRDT_HPP_BUILTIN(double, F64, zen_value_set_f64, zen_value_get_f64, v, 0.0)
ZEN_CRDT_HPP_BUILTIN(Vec2, Vec2, zen_value_set_vec2, zen_value_get_vec2, (zen_vec2_t{v.x, v.y}), zen_vec2_t{})
ZEN_CRDT_HPP_BUILTIN(Vec3, Vec3, zen_value_set_vec3, zen_value_get_vec3, (zen_vec3_t{v.x, v.y, v.z}), zen_vec3_t{})
ZEN_CRDT_HPP_BUILTIN(Vec4, Vec4, zen_value_set_vec4, zen_value_get_vec4, (zen_vec4_t{v.x, v.y, v.z, v.w}),
                     zen_vec4_t{})
ZEN_CRDT_HPP_BUILTIN(Quat, Quat, zen_value_set_quat, zen_value_get_quat, (zen_quat_t{v.x, v.y, v.z, v.w}),
                     zen_quat_t{})
ZEN_CRDT_HPP_BUILTIN(Color, Color, zen_value_set_color, zen_value_get_color, (zen_color_t{v.r, v.g, v.b, v.a}),
                     zen_color_t{})
#undef ZEN_CRDT_HPP_BUILTIN

template <>
struct builtin<std::string> : std::true_type {
  static constexpr Type type = Type::String;
  static zen_status_t set(zen_context_t c, zen_value_t h, const std::string& v) noexcept {
    return zen_value_set_string(c, h, v.data(), v.size());
  }
  static zen_status_t get(zen_context_t c, zen_value_t h, std::string& v) {
    return read_sized(v, [&](char* buf, std::size_t cap, std::size_t* len) {
      return zen_value_get_string(c, h, buf, cap, len);
    });
  }
};

template <>
struct builtin<std::vector<std::uint8_t>> : std::true_type {
  static constexpr Type type = Type::Bytes;
  static zen_status_t set(zen_context_t c, zen_value_t h, const std::vector<std::uint8_t>& v) noexcept {
    return zen_value_set_bytes(c, h, v.data(), v.size());
  }
  static zen_status_t get(zen_context_t c, zen_value_t h, std::vector<std::uint8_t>& v) {
    return read_sized(v, [&](std::uint8_t* buf, std::size_t cap, std::size_t* len) {
      return zen_value_get_bytes(c, h, buf, cap, len);
    });
  }
};

template <class T, class = void>
struct has_wire : std::false_type {};
template <class T>
struct has_wire<T, std::void_t<typename value_traits<T>::wire>> : std::true_type {};

// How `T` is stored: itself if built in, else its traits' wire type.
template <class T, bool = builtin<T>::value>
struct storage {
  using wire = T;
  static const T& to(const T& v) { return v; }
  static T from(T w) { return w; }
};
template <class T>
struct storage<T, false> {
  static_assert(has_wire<T>::value,
                "zen::Value<T>: T is not a zen-crdt type. Use bool, std::int64_t, double, std::string, "
                "std::vector<std::uint8_t>, zen::Vec2/Vec3/Vec4/Quat/Color, or specialise zen::value_traits<T> "
                "with `using wire = <one of those>;`, `static wire to_wire(const T&)` and "
                "`static T from_wire(const wire&)` (see \"YOUR OWN TYPES\" in zen_crdt.hpp).");
  using wire = typename value_traits<T>::wire;
  static_assert(builtin<wire>::value, "zen::value_traits<T>::wire must be a built-in zen-crdt type");
  static wire to(const T& v) { return value_traits<T>::to_wire(v); }
  static T from(const wire& w) { return value_traits<T>::from_wire(w); }
};

template <class T>
using wire_t = typename storage<T>::wire;

}  // namespace detail

// The zen-crdt type a C++ type is stored as.
template <class T>
inline constexpr Type type_of = detail::builtin<detail::wire_t<T>>::type;

// ---- values -----------------------------------------------------------------------------

// A value's type, mode, policy and sync state.
struct Info {
  Type type = Type::None;
  Mode mode = Mode::FastLocal;
  Policy policy = Policy::LastWriterWins;
  SyncState state = SyncState::LocalOnly;
};

// How a value is created: its mode here, and its policy (the first creator's holds on
// every peer). For `Policy::Custom`, `custom` names a merge registered on every peer.
struct ValueOptions {
  Mode mode = Mode::FastLocal;
  Policy policy = Policy::LastWriterWins;
  std::string_view custom = {};
  // Never sent, never taken from peers (UI state, local config): the same calls and
  // events, always SyncState::LocalOnly. Chosen when the value is first created here.
  bool local_only = false;
  // Who may write: empty, anyone; a peer id, only the value's owner, that peer being its
  // first owner (usually your own id). Others' writes fail with ZEN_ERR_NOT_OWNER here
  // and are refused on receipt everywhere. The first creator's choice holds.
  std::optional<std::uint64_t> owner = std::nullopt;
};

// A typed view of one value of one context: copyable, owns nothing. Calls after its
// context is gone report ZEN_ERR_INVALID_HANDLE.
template <class T>
class Value {
 public:
  Value() = default;
  Value(zen_context_t ctx, zen_value_t handle) noexcept : ctx_(ctx), h_(handle) {}

  // Writes `v` (FastLocal: shown at once; WaitForSync: shown when every member has it).
  Status set(const T& v) const {
    zen_status_t s = detail::builtin<detail::wire_t<T>>::set(ctx_, h_, detail::storage<T>::to(v));
    return s == ZEN_OK ? Status() : Status::from(s);
  }
  // What reads show here (a never-written value reads as its type's zero).
  Result<T> get() const {
    detail::wire_t<T> w{};
    zen_status_t s = detail::builtin<detail::wire_t<T>>::get(ctx_, h_, w);
    if (s != ZEN_OK) return Result<T>::from(s);
    return Result<T>(detail::storage<T>::from(w));
  }
  Result<Info> info() const {
    zen_value_type_t t{};
    zen_mode_t m{};
    zen_policy_t p{};
    zen_sync_state_t st{};
    zen_status_t s = zen_value_info(ctx_, h_, &t, &m, &p, &st);
    if (s != ZEN_OK) return Result<Info>::from(s);
    return Info{static_cast<Type>(t), static_cast<Mode>(m), static_cast<Policy>(p), static_cast<SyncState>(st)};
  }
  Status set_mode(Mode mode) const {
    return Status::from(zen_value_set_mode(ctx_, h_, static_cast<std::uint32_t>(mode)));
  }
  // Removes the value on every peer.
  Status remove() const { return Status::from(zen_value_remove(ctx_, h_)); }
  // Re-announces the value unchanged: a ChangeKind::Touched event here at once and on
  // every peer when it arrives. ZEN_ERR_REMOVED for a removed value,
  // ZEN_ERR_INVALID_ARGUMENT for one never written.
  Status touch() const { return Status::from(zen_value_touch(ctx_, h_)); }
  // The owner of an owner-only value as this context knows it; empty if anyone may
  // write. Writes here succeed when it is empty or this context's own id.
  Result<std::optional<std::uint64_t>> owner() const {
    std::uint64_t owner = 0;
    zen_status_t s = zen_value_owner(ctx_, h_, &owner);
    if (s != ZEN_OK) return Result<std::optional<std::uint64_t>>::from(s);
    return owner == 0 ? std::optional<std::uint64_t>() : std::optional<std::uint64_t>(owner);
  }
  // Gives an owner-only value to peer `to`; from now on this context may not write it
  // (ChangeKind::OwnerChanged here at once, on every peer when it arrives).
  // ZEN_ERR_NOT_OWNER unless this context owns it; ZEN_ERR_INVALID_ARGUMENT for a value
  // anyone may write.
  Status transfer(std::uint64_t to) const { return Status::from(zen_value_transfer(ctx_, h_, to)); }
  // Whether the value is local-only here (ValueOptions::local_only).
  Result<bool> is_local_only() const {
    bool local = false;
    zen_status_t s = zen_value_is_local_only(ctx_, h_, &local);
    if (s != ZEN_OK) return Result<bool>::from(s);
    return local;
  }
  // Blocks until the value is Converged (ZEN_ERR_TIMEOUT after `timeout`). For threads
  // other than the one that ticks.
  Status wait_converged(std::chrono::milliseconds timeout) const {
    auto ms = timeout.count() < 0 ? 0 : timeout.count();
    return Status::from(zen_value_wait_converged(ctx_, h_, static_cast<std::uint64_t>(ms)));
  }
  Result<std::string> id() const {
    std::string out;
    zen_status_t s = detail::read_sized(out, [&](char* buf, std::size_t cap, std::size_t* len) {
      return zen_value_id(ctx_, h_, buf, cap, len);
    });
    if (s != ZEN_OK) return Result<std::string>::from(s);
    return out;
  }
  zen_value_t handle() const noexcept { return h_; }
  zen_context_t context() const noexcept { return ctx_; }

 private:
  zen_context_t ctx_{};
  zen_value_t h_{};
};

inline bool same_handle(zen_value_t a, zen_value_t b) noexcept { return a.owner == b.owner && a.index == b.index; }

// ---- change events ----------------------------------------------------------------------

// A value inside an event, borrowed: valid until the next event of the same `changes()`.
class ValueView {
 public:
  explicit ValueView(const zen_value_data_t& d) noexcept : d_(&d) {}
  Type type() const noexcept { return static_cast<Type>(d_->value_type); }
  bool empty() const noexcept { return type() == Type::None; }
  // Text or bytes, borrowed (empty for other types).
  std::string_view text() const noexcept {
    if (type() != Type::String && type() != Type::Bytes) return {};
    return std::string_view(reinterpret_cast<const char*>(d_->data.bytes.ptr), d_->data.bytes.len);
  }
  // The value as `T` (a built-in type or one with value_traits), or nothing if it holds
  // another type.
  template <class T>
  std::optional<T> as() const {
    using W = detail::wire_t<T>;
    if (type() != detail::builtin<W>::type) return std::nullopt;
    return detail::storage<T>::from(wire<W>());
  }
  // An owned copy.
  Variant to_variant() const {
    switch (type()) {
      case Type::Bool: return wire<bool>();
      case Type::I64: return wire<std::int64_t>();
      case Type::F64: return wire<double>();
      case Type::String: return wire<std::string>();
      case Type::Bytes: return wire<std::vector<std::uint8_t>>();
      case Type::Vec2: return wire<Vec2>();
      case Type::Vec3: return wire<Vec3>();
      case Type::Vec4: return wire<Vec4>();
      case Type::Quat: return wire<Quat>();
      case Type::Color: return wire<Color>();
      case Type::None: break;
    }
    return std::monostate{};
  }
  const zen_value_data_t& capi() const noexcept { return *d_; }

 private:
  template <class W>
  W wire() const {
    const auto& p = d_->data;
    if constexpr (std::is_same_v<W, bool>) return p.b;
    else if constexpr (std::is_same_v<W, std::int64_t>) return p.i;
    else if constexpr (std::is_same_v<W, double>) return p.f;
    else if constexpr (std::is_same_v<W, std::string>) return std::string(text());
    else if constexpr (std::is_same_v<W, std::vector<std::uint8_t>>)
      return p.bytes.len == 0 ? W{} : W(p.bytes.ptr, p.bytes.ptr + p.bytes.len);
    else if constexpr (std::is_same_v<W, Vec2>) return Vec2{p.vec[0], p.vec[1]};
    else if constexpr (std::is_same_v<W, Vec3>) return Vec3{p.vec[0], p.vec[1], p.vec[2]};
    else if constexpr (std::is_same_v<W, Vec4>) return Vec4{p.vec[0], p.vec[1], p.vec[2], p.vec[3]};
    else if constexpr (std::is_same_v<W, Quat>) return Quat{p.vec[0], p.vec[1], p.vec[2], p.vec[3]};
    else if constexpr (std::is_same_v<W, Color>) return Color{p.vec[0], p.vec[1], p.vec[2], p.vec[3]};
    else static_assert(detail::dependent_false<W>, "not a built-in zen-crdt type");
  }
  const zen_value_data_t* d_;
};

struct OwnedChange;

// One change event, borrowed from the range that produced it: valid until the loop
// moves on (take `owned()` to keep it).
class Change {
 public:
  explicit Change(const zen_change_t& c) noexcept : c_(&c) {}
  zen_value_t value() const noexcept { return c_->value; }
  // Whether the event is about `v`.
  template <class T>
  bool is(const Value<T>& v) const noexcept {
    return same_handle(c_->value, v.handle());
  }
  ChangeKind kind() const noexcept { return static_cast<ChangeKind>(c_->kind); }
  SyncState state() const noexcept { return static_cast<SyncState>(c_->state); }
  // A concurrent write by another peer replaced what this peer showed.
  bool is_correction() const noexcept { return c_->is_correction; }
  // This context had never shown the value's content before: it "was already there"
  // (created by a peer, caught up on a late join or after a partition, loaded).
  bool is_initial() const noexcept { return c_->is_initial; }
  // The owner of this owner-only value changed with this event (`Value::owner()`).
  bool owner_changed() const noexcept { return c_->owner_changed; }
  // The peer whose write caused it (this context's own id for local writes).
  std::uint64_t origin() const noexcept { return c_->origin; }
  // Host time of the change (the ms passed to `tick`).
  std::uint64_t time_ms() const noexcept { return c_->time_ms; }
  ValueView old_value() const noexcept { return ValueView(c_->old_value); }
  ValueView new_value() const noexcept { return ValueView(c_->new_value); }
  inline OwnedChange owned() const;
  const zen_change_t& capi() const noexcept { return *c_; }

 private:
  const zen_change_t* c_;
};

// A change event that owns its values.
struct OwnedChange {
  zen_value_t value{};
  ChangeKind kind = ChangeKind::Modified;
  SyncState state = SyncState::LocalOnly;
  bool is_correction = false;
  bool is_initial = false;
  bool owner_changed = false;
  std::uint64_t origin = 0;
  std::uint64_t time_ms = 0;
  Variant old_value;
  Variant new_value;
};

inline OwnedChange Change::owned() const {
  return OwnedChange{c_->value,       kind(),      state(),     c_->is_correction,
                     c_->is_initial,  c_->owner_changed,        c_->origin,
                     c_->time_ms,     old_value().to_variant(), new_value().to_variant()};
}

namespace detail {

// A range-for over one of the C API's queues: `Source::pop(has)` pops the next item into
// the source (its `item()`) and returns the C status. The loop ends when the queue is
// empty or a call fails; the failure is kept in `status()`. Neither copyable nor
// movable: the items point into the source.
template <class Item, class Source>
class PollRange {
 public:
  template <class... Args>
  explicit PollRange(Args&&... args) : src_(std::forward<Args>(args)...) {}
  PollRange(const PollRange&) = delete;
  PollRange& operator=(const PollRange&) = delete;

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Item;
    using difference_type = std::ptrdiff_t;
    using pointer = const Item*;
    using reference = const Item&;
    iterator() = default;
    explicit iterator(PollRange* r) : r_(r) {}
    reference operator*() const { return r_->src_.item(); }
    pointer operator->() const { return &r_->src_.item(); }
    iterator& operator++() {
      r_->next();
      return *this;
    }
    void operator++(int) { r_->next(); }
    bool operator==(const iterator& o) const { return done() == o.done(); }
    bool operator!=(const iterator& o) const { return !(*this == o); }

   private:
    bool done() const { return r_ == nullptr || !r_->has_; }
    PollRange* r_ = nullptr;
  };

  iterator begin() {
    next();
    return iterator(this);
  }
  iterator end() { return iterator(); }
  // Why the loop ended early, if it did.
  const Status& status() const noexcept { return status_; }

 private:
  void next() {
    has_ = false;
    if (!status_) return;
    zen_status_t s = src_.pop(has_);
    if (s != ZEN_OK) {
      has_ = false;
      status_ = Status::from(s);
    }
  }
  Source src_;
  bool has_ = false;
  Status status_;
};

// The change queue of a context.
class ChangeSource {
 public:
  explicit ChangeSource(zen_context_t ctx) noexcept : ctx_(ctx) {}
  ChangeSource(const ChangeSource&) = delete;
  ChangeSource& operator=(const ChangeSource&) = delete;
  zen_status_t pop(bool& has) { return zen_context_poll_change(ctx_, &raw_, &has); }
  const Change& item() const noexcept { return view_; }

 private:
  zen_context_t ctx_;
  zen_change_t raw_{};
  Change view_{raw_};
};

}  // namespace detail

// `for (const zen::Change& c : ctx.changes())`: pops events until none is left.
using ChangeRange = detail::PollRange<Change, detail::ChangeSource>;

// ---- outbound messages ------------------------------------------------------------------

// One outbound message, borrowed: valid until the loop moves on.
struct Message {
  // The peer to send it to, or 0 for every member (the same bytes to all, or a relay).
  std::uint64_t to = 0;
  const std::uint8_t* bytes = nullptr;
  std::size_t len = 0;
  const std::uint8_t* data() const noexcept { return bytes; }
  std::size_t size() const noexcept { return len; }
  bool broadcast() const noexcept { return to == 0; }
};

namespace detail {

// The outbound queue of a context, popped into one buffer reused across calls (grown
// when a message is larger).
class OutboundSource {
 public:
  OutboundSource(zen_context_t ctx, std::vector<std::uint8_t>& buf) noexcept : ctx_(ctx), buf_(&buf) {}
  OutboundSource(const OutboundSource&) = delete;
  OutboundSource& operator=(const OutboundSource&) = delete;
  zen_status_t pop(bool& has) {
    if (buf_->size() < 1024) buf_->resize(1024);
    for (;;) {
      std::size_t len = 0;
      std::uint64_t to = 0;
      zen_status_t s = zen_context_poll_outbound(ctx_, buf_->data(), buf_->size(), &len, &to, &has);
      if (s == ZEN_ERR_BUFFER_TOO_SMALL) {
        buf_->resize(len);
        continue;
      }
      if (s == ZEN_OK && has) msg_ = Message{to, buf_->data(), len};
      return s;
    }
  }
  const Message& item() const noexcept { return msg_; }

 private:
  zen_context_t ctx_;
  std::vector<std::uint8_t>* buf_;
  Message msg_;
};

}  // namespace detail

// `for (const zen::Message& m : ctx.outbound())`: pops messages until none is left.
using OutboundRange = detail::PollRange<Message, detail::OutboundSource>;

// ---- custom merges ----------------------------------------------------------------------

// One concurrent write offered to a custom merge.
template <class T>
struct Candidate {
  std::uint64_t writer = 0;
  // Logical clock of the write (higher saw more history).
  std::uint64_t clock = 0;
  T value{};
};

namespace detail {

template <class T>
inline void fill_out(zen_value_data_t* out, const T& v, std::string& keep) {
  out->value_type = static_cast<std::uint32_t>(builtin<T>::type);
  auto& p = out->data;
  if constexpr (std::is_same_v<T, bool>) p.b = v;
  else if constexpr (std::is_same_v<T, std::int64_t>) p.i = v;
  else if constexpr (std::is_same_v<T, double>) p.f = v;
  else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::vector<std::uint8_t>>) {
    keep.assign(v.begin(), v.end());
    p.bytes.ptr = reinterpret_cast<const std::uint8_t*>(keep.data());
    p.bytes.len = keep.size();
  } else if constexpr (std::is_same_v<T, Vec2>) {
    p.vec[0] = v.x, p.vec[1] = v.y, p.vec[2] = 0, p.vec[3] = 0;
  } else if constexpr (std::is_same_v<T, Vec3>) {
    p.vec[0] = v.x, p.vec[1] = v.y, p.vec[2] = v.z, p.vec[3] = 0;
  } else if constexpr (std::is_same_v<T, Vec4> || std::is_same_v<T, Quat>) {
    p.vec[0] = v.x, p.vec[1] = v.y, p.vec[2] = v.z, p.vec[3] = v.w;
  } else if constexpr (std::is_same_v<T, Color>) {
    p.vec[0] = v.r, p.vec[1] = v.g, p.vec[2] = v.b, p.vec[3] = v.a;
  }
}

// The C callback of a merge of `T` held in `F`: never lets an exception out (a throw
// is a failed merge, which falls back to last-writer-wins on every peer).
template <class T, class F>
std::int32_t merge_trampoline(void* user, const zen_candidate_t* cands, std::size_t count, zen_value_data_t* out) noexcept {
  using W = wire_t<T>;
#ifdef ZEN_CRDT_HPP_EXCEPTIONS
  try {
#endif
    std::vector<Candidate<T>> in;
    in.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      std::optional<T> v = ValueView(cands[i].value).template as<T>();
      if (!v) return 1;
      in.push_back(Candidate<T>{cands[i].writer, cands[i].clock, std::move(*v)});
    }
    std::optional<T> merged = (*static_cast<F*>(user))(static_cast<const std::vector<Candidate<T>>&>(in));
    if (!merged) return 1;
    // The library copies `out` before this returns, so the text may live on this stack.
    thread_local std::string keep;
    fill_out<W>(out, storage<T>::to(*merged), keep);
    return 0;
#ifdef ZEN_CRDT_HPP_EXCEPTIONS
  } catch (...) {
    return 1;
  }
#endif
}

template <class F>
void delete_callable(void* user) noexcept {
  delete static_cast<F*>(user);
}

}  // namespace detail

// ---- tables (1.5) ----------------------------------------------------------------------

// A table key: an integer or a string (never equal to each other).
using Key = std::variant<std::int64_t, std::string>;

// What a collection handle names.
enum class CollectionKind : std::uint32_t {
  Table = ZEN_COLLECTION_TABLE,
  Set = ZEN_COLLECTION_SET,
  Sequence = ZEN_COLLECTION_SEQUENCE,
};

namespace detail {

// The C key for `k`, borrowing its string.
inline zen_key_t key_in(const Key& k) noexcept {
  if (const auto* n = std::get_if<std::int64_t>(&k)) return zen_key_t{ZEN_KEY_INT, *n, nullptr, 0};
  const auto& s = std::get<std::string>(k);
  return zen_key_t{ZEN_KEY_STRING, 0, s.data(), s.size()};
}

inline Key key_out(const zen_key_t& k) {
  if (k.kind == ZEN_KEY_INT) return Key(k.int_key);
  return Key(std::string(k.str == nullptr ? "" : k.str, k.str_len));
}

}  // namespace detail

// How this context opens a table, set or sequence: the mode of every entry (its own
// view), the policy of concurrent updates of one entry (an entry's inserter's holds on
// every peer; a set ignores it) and who may write it.
struct TableOptions {
  Mode mode = Mode::FastLocal;
  Policy policy = Policy::LastWriterWins;
  std::string_view custom = {};
  // Who may write: empty, anyone; a peer id, only the collection's owner, that peer
  // being its first owner. Others' inserts, updates and removals fail with
  // ZEN_ERR_NOT_OWNER here and are refused by every peer. The first creator's choice
  // holds. (1.5)
  std::optional<std::uint64_t> owner = std::nullopt;
};

namespace detail {

// What tables, sets and sequences share: the handle, the size, the state, the mode.
class Collection {
 public:
  Collection() = default;
  Collection(zen_context_t ctx, zen_table_t handle) noexcept : ctx_(ctx), h_(handle) {}
  // Keys (members, items) that show an entry.
  Result<std::size_t> size() const {
    std::size_t n = 0;
    zen_status_t s = zen_table_len(ctx_, h_, &n);
    if (s != ZEN_OK) return Result<std::size_t>::from(s);
    return n;
  }
  // Switches how every entry shows writes (events for keys whose reads change).
  Status set_mode(Mode mode) const {
    return Status::from(zen_table_set_mode(ctx_, h_, static_cast<std::uint32_t>(mode)));
  }
  // The sync state of the whole collection (LocalOnly while any entry has a write no
  // peer has; Converged once every member holds every entry's latest state).
  Result<SyncState> state() const {
    std::uint32_t st = 0;
    zen_status_t s = zen_table_state(ctx_, h_, &st);
    if (s != ZEN_OK) return Result<SyncState>::from(s);
    return static_cast<SyncState>(st);
  }
  // The owner of an owner-only collection as this context knows it; empty if anyone
  // may write it. Writes here succeed when it is empty or this context's id. (1.5)
  Result<std::optional<std::uint64_t>> owner() const {
    std::uint64_t owner = 0;
    zen_status_t s = zen_table_owner(ctx_, h_, &owner);
    if (s != ZEN_OK) return Result<std::optional<std::uint64_t>>::from(s);
    return owner == 0 ? std::optional<std::uint64_t>() : std::optional<std::uint64_t>(owner);
  }
  // Gives an owner-only collection to peer `to`; from now on this context may not write
  // it (a TableChangeKind::OwnerChanged event here now, on every peer when it arrives).
  // ZEN_ERR_NOT_OWNER unless this context owns it; ZEN_ERR_INVALID_ARGUMENT for one
  // anyone may write. (1.5)
  Status transfer(std::uint64_t to) const { return Status::from(zen_table_transfer(ctx_, h_, to)); }
  zen_table_t handle() const noexcept { return h_; }
  zen_context_t context() const noexcept { return ctx_; }

 protected:
  // The entries snapshot, in key order, each passed to `take(key, value)` as `T`.
  template <class T, class Take>
  Status read_entries(const char* what, Take take) const {
    std::size_t n = 0;
    zen_status_t s = zen_table_entries(ctx_, h_, &n);
    if (s != ZEN_OK) return Status::from(s);
    for (std::size_t i = 0; i < n; ++i) {
      zen_key_t k{};
      zen_value_data_t d{};
      s = zen_table_entry_at(ctx_, i, &k, &d);
      if (s != ZEN_OK) return Status::from(s);
      std::optional<T> v = ValueView(d).template as<T>();
      if (!v) return Status(Error(ZEN_ERR_WRONG_TYPE, std::string(what) + ": an entry holds another type"));
      take(k, std::move(*v));
    }
    return Status();
  }
  // Calls `call(&data)` with `item` as a tagged C value.
  template <class T, class F>
  static Status with_data(const T& item, F call) {
    zen_value_data_t d{};
    std::string keep;
    fill_out<wire_t<T>>(&d, storage<T>::to(item), keep);
    return Status::from(call(&d));
  }
  zen_context_t ctx_{};
  zen_table_t h_{};
};

}  // namespace detail

// A typed view of one table of one context (1.5): keys (`zen::Key`, an integer or a
// string) to entries of `T`, each a register replicated like a value. Copyable, owns
// nothing; calls after its context is gone report ZEN_ERR_INVALID_HANDLE.
template <class T>
class Table : public detail::Collection {
 public:
  Table() = default;
  Table(zen_context_t ctx, zen_table_t handle) noexcept : Collection(ctx, handle) {}

  // Inserts `key` where it shows no entry, else updates its entry. FastLocal: shown at
  // once; WaitForSync: once every member holds it.
  Status set(const Key& key, const T& v) const {
    zen_key_t k = detail::key_in(key);
    return with_data(v, [&](const zen_value_data_t* d) { return zen_table_set(ctx_, h_, &k, d); });
  }
  // model_citizen's touch(key, value): when `key` shows `v`, re-announces it unchanged
  // (TableChangeKind::Touched here and on every peer); otherwise writes it as `set`.
  Status touch(const Key& key, const T& v) const {
    zen_key_t k = detail::key_in(key);
    return with_data(v, [&](const zen_value_data_t* d) { return zen_table_touch(ctx_, h_, &k, d); });
  }
  // Removes `key` on every peer; whether it showed an entry here.
  Result<bool> remove(const Key& key) const {
    zen_key_t k = detail::key_in(key);
    bool removed = false;
    zen_status_t s = zen_table_remove(ctx_, h_, &k, &removed);
    if (s != ZEN_OK) return Result<bool>::from(s);
    return removed;
  }
  // What `key` shows (by the mode), nothing for no entry.
  Result<std::optional<T>> get(const Key& key) const {
    zen_key_t k = detail::key_in(key);
    zen_value_data_t d{};
    bool has = false;
    zen_status_t s = zen_table_get(ctx_, h_, &k, &d, &has);
    if (s != ZEN_OK) return Result<std::optional<T>>::from(s);
    if (!has) return std::optional<T>();
    return ValueView(d).template as<T>();
  }
  // Every key that shows an entry, with its value, sorted by key (integers first).
  Result<std::vector<std::pair<Key, T>>> entries() const {
    std::vector<std::pair<Key, T>> out;
    Status s = read_entries<T>("zen::Table::entries",
                               [&](const zen_key_t& k, T v) { out.emplace_back(detail::key_out(k), std::move(v)); });
    if (!s) return s.error();
    return out;
  }
};

// A typed view of one set of one context (1.5): members of `T`. Add wins: an add
// concurrent with a removal of the same member leaves it in. Its events are table events
// (`ctx.table_changes()`, `c.is(set)`): Added with the member as `new_value()`, Removed
// with it as `old_value()`. Copyable, owns nothing.
template <class T>
class Set : public detail::Collection {
 public:
  Set() = default;
  Set(zen_context_t ctx, zen_table_t handle) noexcept : Collection(ctx, handle) {}

  Status add(const T& member) const {
    return with_data(member, [&](const zen_value_data_t* d) { return zen_set_add(ctx_, h_, d); });
  }
  // Re-announces `member` if it is in (TableChangeKind::Touched everywhere), else adds it.
  Status touch(const T& member) const {
    return with_data(member, [&](const zen_value_data_t* d) { return zen_set_touch(ctx_, h_, d); });
  }
  // Removes `member` on every peer; whether it was in the set here.
  Result<bool> remove(const T& member) const {
    bool removed = false;
    Status s = with_data(member, [&](const zen_value_data_t* d) { return zen_set_remove(ctx_, h_, d, &removed); });
    if (!s) return s.error();
    return removed;
  }
  Result<bool> contains(const T& member) const {
    bool in = false;
    Status s = with_data(member, [&](const zen_value_data_t* d) { return zen_set_contains(ctx_, h_, d, &in); });
    if (!s) return s.error();
    return in;
  }
  // Every member (integers and strings in order; other types by their encoding).
  Result<std::vector<T>> members() const {
    std::vector<T> out;
    Status s = read_entries<T>("zen::Set::members", [&](const zen_key_t&, T v) { out.push_back(std::move(v)); });
    if (!s) return s.error();
    return out;
  }
};

// A typed view of one sequence of one context (1.5): items of `T` in one order on every
// peer (concurrent inserts at one place keep both). Its events are table events
// (`ctx.table_changes()`, `c.is(seq)`) whose `index()` says where the item is (or was).
// Copyable, owns nothing.
template <class T>
class Seq : public detail::Collection {
 public:
  Seq() = default;
  Seq(zen_context_t ctx, zen_table_t handle) noexcept : Collection(ctx, handle) {}

  // Inserts `item` at `index` (0 ..= size(); size() appends).
  Status insert(std::size_t index, const T& item) const {
    return with_data(item, [&](const zen_value_data_t* d) { return zen_seq_insert(ctx_, h_, index, d); });
  }
  Status push_back(const T& item) const {
    return with_data(item, [&](const zen_value_data_t* d) { return zen_seq_push(ctx_, h_, d); });
  }
  // Replaces the item at `index` (a concurrent removal of it wins).
  Status set(std::size_t index, const T& item) const {
    return with_data(item, [&](const zen_value_data_t* d) { return zen_seq_set(ctx_, h_, index, d); });
  }
  Status erase(std::size_t index) const { return Status::from(zen_seq_remove(ctx_, h_, index)); }
  // Re-announces the item at `index` unchanged (TableChangeKind::Touched everywhere).
  Status touch(std::size_t index) const { return Status::from(zen_seq_touch(ctx_, h_, index)); }
  // Moves the item at `from` to `to` (an index in the sequence without it).
  Status move(std::size_t from, std::size_t to) const { return Status::from(zen_seq_move(ctx_, h_, from, to)); }
  Result<T> at(std::size_t index) const {
    zen_value_data_t d{};
    zen_status_t s = zen_seq_get(ctx_, h_, index, &d);
    if (s != ZEN_OK) return Result<T>::from(s);
    std::optional<T> v = ValueView(d).template as<T>();
    if (!v) return Error(ZEN_ERR_WRONG_TYPE, "zen::Seq::at: the item holds another type than the sequence's");
    return std::move(*v);
  }
  // Every item in order, a copy.
  Result<std::vector<T>> items() const {
    std::vector<T> out;
    Status s = read_entries<T>("zen::Seq::items", [&](const zen_key_t&, T v) { out.push_back(std::move(v)); });
    if (!s) return s.error();
    return out;
  }
};

// What happened to one key.
enum class TableChangeKind : std::uint32_t {
  Added = ZEN_TABLE_ADDED,
  Removed = ZEN_TABLE_REMOVED,
  Modified = ZEN_TABLE_MODIFIED,
  // This context's write of the key was refused everywhere: it wrote an owner-only
  // collection it turned out not to own; `origin()` is the owner.
  Rejected = ZEN_TABLE_REJECTED,
  // The collection's owner changed (`origin()` is the new owner); no key.
  OwnerChanged = ZEN_TABLE_OWNER_CHANGED,
  // The key's entry was re-announced unchanged (`touch`): old and new hold the same.
  Touched = ZEN_TABLE_TOUCHED,
};

struct OwnedTableChange;

// One table event, borrowed from the range that produced it: valid until the loop
// moves on (take `owned()` to keep it).
class TableChange {
 public:
  explicit TableChange(const zen_table_change_t& c) noexcept : c_(&c) {}
  zen_table_t table() const noexcept { return c_->table; }
  // Whether the event is about table, set or sequence `t`.
  bool is(const detail::Collection& t) const noexcept {
    return c_->table.owner == t.handle().owner && c_->table.index == t.handle().index;
  }
  // For a sequence, the item's index (where it is, or was for a removal); nothing for
  // tables and sets.
  std::optional<std::size_t> index() const noexcept {
    if (c_->index < 0) return std::nullopt;
    return static_cast<std::size_t>(c_->index);
  }
  TableChangeKind kind() const noexcept { return static_cast<TableChangeKind>(c_->kind); }
  // The key, owned.
  Key key() const { return detail::key_out(c_->key); }
  // An integer key, or nothing for a string key.
  std::optional<std::int64_t> int_key() const noexcept {
    if (c_->key.kind != ZEN_KEY_INT) return std::nullopt;
    return c_->key.int_key;
  }
  // A string key, borrowed (empty for an integer key).
  std::string_view str_key() const noexcept {
    if (c_->key.kind != ZEN_KEY_STRING || c_->key.str == nullptr) return {};
    return std::string_view(c_->key.str, c_->key.str_len);
  }
  SyncState state() const noexcept { return static_cast<SyncState>(c_->state); }
  bool is_correction() const noexcept { return c_->is_correction; }
  // The entry was already there when this context learned of it (late join, catch-up).
  bool is_initial() const noexcept { return c_->is_initial; }
  std::uint64_t origin() const noexcept { return c_->origin; }
  std::uint64_t time_ms() const noexcept { return c_->time_ms; }
  // What the key showed before / shows now (empty: no entry).
  ValueView old_value() const noexcept { return ValueView(c_->old_value); }
  ValueView new_value() const noexcept { return ValueView(c_->new_value); }
  inline OwnedTableChange owned() const;
  const zen_table_change_t& capi() const noexcept { return *c_; }

 private:
  const zen_table_change_t* c_;
};

// A table event that owns its key and values.
struct OwnedTableChange {
  zen_table_t table{};
  TableChangeKind kind = TableChangeKind::Added;
  Key key;
  // For a sequence, the item's index (-1 for tables and sets).
  std::int64_t index = -1;
  SyncState state = SyncState::LocalOnly;
  bool is_correction = false;
  bool is_initial = false;
  std::uint64_t origin = 0;
  std::uint64_t time_ms = 0;
  Variant old_value;
  Variant new_value;
};

inline OwnedTableChange TableChange::owned() const {
  return OwnedTableChange{c_->table,        kind(),      key(),       c_->index,   state(),
                          c_->is_correction, c_->is_initial,        c_->origin,
                          c_->time_ms,       old_value().to_variant(), new_value().to_variant()};
}

namespace detail {

// The table event queue of a context.
class TableChangeSource {
 public:
  explicit TableChangeSource(zen_context_t ctx) noexcept : ctx_(ctx) {}
  TableChangeSource(const TableChangeSource&) = delete;
  TableChangeSource& operator=(const TableChangeSource&) = delete;
  zen_status_t pop(bool& has) { return zen_context_poll_table_change(ctx_, &raw_, &has); }
  const TableChange& item() const noexcept { return view_; }

 private:
  zen_context_t ctx_;
  zen_table_change_t raw_{};
  TableChange view_{raw_};
};

}  // namespace detail

// `for (const zen::TableChange& c : ctx.table_changes())`: pops table events until none
// is left.
using TableChangeRange = detail::PollRange<TableChange, detail::TableChangeSource>;

// ---- contexts ---------------------------------------------------------------------------

// Context options: the library's defaults, changed with chained setters. Durations in
// ms, sizes in bytes.
class Options {
 public:
  Options() noexcept {
    if (zen_options_default(&o_) != ZEN_OK) o_ = zen_options_t{};
  }
  Options& tick_interval_ms(std::uint64_t v) noexcept { return o_.tick_interval_ms = v, *this; }
  Options& peer_timeout_ms(std::uint64_t v) noexcept { return o_.peer_timeout_ms = v, *this; }
  Options& heartbeat_ms(std::uint64_t v) noexcept { return o_.heartbeat_ms = v, *this; }
  Options& max_message_bytes(std::uint64_t v) noexcept { return o_.max_message_bytes = v, *this; }
  Options& max_value_bytes(std::uint64_t v) noexcept { return o_.max_value_bytes = v, *this; }
  Options& max_id_bytes(std::uint64_t v) noexcept { return o_.max_id_bytes = v, *this; }
  Options& event_capacity(std::uint64_t v) noexcept { return o_.event_capacity = v, *this; }
  Options& hibernate_after_ms(std::uint64_t v) noexcept { return o_.hibernate_after_ms = v, *this; }
  Options& max_values(std::uint64_t v) noexcept { return o_.max_values = v, *this; }
  // The size messages aim at (0: max_message_bytes): set an unreliable transport's
  // datagram budget, about 1200, so a lost datagram loses only its own values (1.1).
  Options& target_message_bytes(std::uint64_t v) noexcept { return o_.target_message_bytes = v, *this; }
  const zen_options_t& capi() const noexcept { return o_; }
  zen_options_t& capi() noexcept { return o_; }

 private:
  zen_options_t o_{};
};

using Metrics = zen_metrics_t;
using PeerLag = zen_peer_lag_t;

// One replica (one player). Move-only; the destructor frees it.
class Context {
 public:
  Context() noexcept = default;
  explicit Context(zen_context_t owned) noexcept : h_(owned) {}
  Context(Context&& o) noexcept : h_(std::exchange(o.h_, zen_context_t{})), out_(std::move(o.out_)) {}
  Context& operator=(Context&& o) noexcept {
    if (this != &o) {
      close();
      h_ = std::exchange(o.h_, zen_context_t{});
      out_ = std::move(o.out_);
    }
    return *this;
  }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  ~Context() { close(); }

  // A context for peer `peer_id` (1..2^53-1, unique in the session).
  static Result<Context> create(std::uint64_t peer_id, const Options& opts = Options()) {
    zen_context_t h{};
    zen_status_t s = zen_context_new(peer_id, &opts.capi(), &h);
    if (s != ZEN_OK) return Result<Context>::from(s);
    return Context(h);
  }

  // A context for `peer_id` holding a state `save()` produced (here or on another
  // machine). Each value queues a Created event; the context has no peers yet. Load under
  // the id that saved only its latest save (saved on quit, loaded on start); another
  // machine taking the state over (a room's keeper) loads under an id that never wrote in
  // it. ZEN_ERR_DECODE for a corrupt, truncated or newer save; nothing is created then.
  // Since 1.2.
  static Result<Context> load(std::uint64_t peer_id, const std::uint8_t* data, std::size_t len,
                              const Options& opts = Options()) {
    zen_context_t h{};
    zen_status_t s = zen_context_load(peer_id, &opts.capi(), data, len, &h);
    if (s != ZEN_OK) return Result<Context>::from(s);
    return Context(h);
  }
  template <class Bytes, class = decltype(std::data(std::declval<const Bytes&>()))>
  static Result<Context> load(std::uint64_t peer_id, const Bytes& bytes, const Options& opts = Options()) {
    return load(peer_id, byte_ptr(bytes), std::size(bytes) * sizeof(*std::data(bytes)), opts);
  }
  // `load` from a file `save_file` wrote; ZEN_ERR_IO if it cannot be read. Since 1.2.
  static Result<Context> load_file(std::uint64_t peer_id, std::string_view path, const Options& opts = Options()) {
    zen_context_t h{};
    zen_status_t s = zen_context_load_file(peer_id, &opts.capi(), path.data(), path.size(), &h);
    if (s != ZEN_OK) return Result<Context>::from(s);
    return Context(h);
  }

  // The whole state (every value, its policy, mode and merge history, and where this
  // context stands on every peer's stream) as bytes for `load`. Since 1.2.
  Result<std::vector<std::uint8_t>> save() const {
    zen_bytes_t b{nullptr, 0};
    zen_status_t s = zen_context_save(h_, &b);
    if (s != ZEN_OK) return Result<std::vector<std::uint8_t>>::from(s);
    std::vector<std::uint8_t> out(b.ptr, b.ptr + b.len);
    zen_bytes_free(&b);
    return out;
  }
  // Saves to `path` atomically (a temporary file beside it, flushed, renamed over it): a
  // crash leaves the old file or the new one. ZEN_ERR_IO names the failed step. Since 1.2.
  Status save_file(std::string_view path) const {
    return Status::from(zen_context_save_file(h_, path.data(), path.size()));
  }

  // Frees the context now (idempotent); later calls report ZEN_ERR_INVALID_HANDLE.
  void close() noexcept { zen_context_free(std::exchange(h_, zen_context_t{})); }
  // Whether this object holds a context (not moved from or closed).
  explicit operator bool() const noexcept { return h_.id != 0; }
  zen_context_t capi() const noexcept { return h_; }
  // Gives up ownership: the caller frees the returned handle.
  zen_context_t release() noexcept { return std::exchange(h_, zen_context_t{}); }

  Result<std::uint64_t> peer_id() const {
    std::uint64_t id = 0;
    zen_status_t s = zen_context_peer_id(h_, &id);
    if (s != ZEN_OK) return Result<std::uint64_t>::from(s);
    return id;
  }
  // Advances to host time `now_ms` (monotonic ms): flushes writes, applies what arrived,
  // queues events.
  Status tick(std::uint64_t now_ms) const { return Status::from(zen_context_tick(h_, now_ms)); }
  // When `tick` next has work if nothing arrives and nothing is written (host time in ms,
  // the clock `tick` takes); std::nullopt when nothing is scheduled. A server can sleep
  // until this or the next receipt instead of ticking at a fixed rate. Since 1.1.
  Result<std::optional<std::uint64_t>> next_deadline_ms() const {
    std::uint64_t at = 0;
    zen_status_t s = zen_context_next_deadline_ms(h_, &at);
    if (s != ZEN_OK) return Result<std::optional<std::uint64_t>>::from(s);
    return at == ZEN_NO_DEADLINE ? std::optional<std::uint64_t>() : std::optional<std::uint64_t>(at);
  }
  Status add_peer(std::uint64_t peer) const { return Status::from(zen_context_add_peer(h_, peer)); }
  Status remove_peer(std::uint64_t peer) const { return Status::from(zen_context_remove_peer(h_, peer)); }

  // Hands over a message from the transport (trusting the sender it names).
  Status receive(const std::uint8_t* data, std::size_t len) const {
    return Status::from(zen_context_receive(h_, data, len));
  }
  // Any contiguous container of bytes (std::vector<std::uint8_t>, std::string, arrays).
  template <class Bytes, class = decltype(std::data(std::declval<const Bytes&>()))>
  Status receive(const Bytes& bytes) const {
    return receive(byte_ptr(bytes), std::size(bytes) * sizeof(*std::data(bytes)));
  }
  // From a transport that knows the sender: a message naming another is rejected.
  Status receive_from(std::uint64_t peer, const std::uint8_t* data, std::size_t len) const {
    return Status::from(zen_context_receive_from(h_, peer, data, len));
  }
  template <class Bytes, class = decltype(std::data(std::declval<const Bytes&>()))>
  Status receive_from(std::uint64_t peer, const Bytes& bytes) const {
    return receive_from(peer, byte_ptr(bytes), std::size(bytes) * sizeof(*std::data(bytes)));
  }

  // Creates the value `id` (or opens it if it exists here with that type). An existing
  // value keeps its type and its first creator's policy; `opts.mode` is applied (the mode
  // is this context's own view, as set_mode changes it).
  template <class T>
  Result<Value<T>> create(std::string_view id, const ValueOptions& opts = ValueOptions()) const {
    zen_value_options_t o{};
    zen_status_t s = zen_value_options_default(&o);
    if (s != ZEN_OK) return Result<Value<T>>::from(s);
    o.mode = static_cast<std::uint32_t>(opts.mode);
    o.policy = static_cast<std::uint32_t>(opts.policy);
    o.custom_name = opts.custom.data();
    o.custom_name_len = opts.custom.size();
    o.local_only = opts.local_only ? 1 : 0;
    o.owner = opts.owner.value_or(0);
    zen_value_t h{};
    s = zen_value_create(h_, id.data(), id.size(), static_cast<std::uint32_t>(type_of<T>), &o, &h);
    if (s != ZEN_OK) return Result<Value<T>>::from(s);
    return Value<T>(h_, h);
  }
  // Opens an existing value; ZEN_ERR_WRONG_TYPE if it holds another type than `T`.
  template <class T>
  Result<Value<T>> open(std::string_view id) const {
    zen_value_t h{};
    zen_status_t s = zen_value_open(h_, id.data(), id.size(), &h);
    if (s != ZEN_OK) return Result<Value<T>>::from(s);
    zen_value_type_t t{};
    s = zen_value_info(h_, h, &t, nullptr, nullptr, nullptr);
    if (s != ZEN_OK) return Result<Value<T>>::from(s);
    if (static_cast<Type>(t) != type_of<T>) {
      return Error(ZEN_ERR_WRONG_TYPE, "zen::Context::open: value '" + std::string(id) + "' holds type " +
                                           std::to_string(static_cast<std::uint32_t>(t)) + ", not the requested type " +
                                           std::to_string(static_cast<std::uint32_t>(type_of<T>)));
    }
    return Value<T>(h_, h);
  }

  // Opens table `id` of entries of `T` (created if new here; a peer's of that id is the
  // same table). ZEN_ERR_WRONG_TYPE when it holds entries of another type. (1.5)
  template <class T>
  Result<Table<T>> table(std::string_view id, const TableOptions& opts = TableOptions()) const {
    return open_collection<Table<T>, T>(zen_table_open, id, opts);
  }

  // Opens set `id` of members of `T` (created if new here; a peer's of that id is the
  // same set; a set and a table may share a name). (1.5)
  template <class T>
  Result<Set<T>> open_set(std::string_view id, const TableOptions& opts = TableOptions()) const {
    return open_collection<Set<T>, T>(zen_set_open, id, opts);
  }
  template <class T>
  Result<Set<T>> open_set(std::string_view id, Mode mode) const {
    return open_set<T>(id, TableOptions{mode});
  }

  // Opens sequence `id` of items of `T` (created if new here; a peer's of that id is the
  // same sequence; tables, sets and sequences may share a name). (1.5)
  template <class T>
  Result<Seq<T>> open_seq(std::string_view id, const TableOptions& opts = TableOptions()) const {
    return open_collection<Seq<T>, T>(zen_seq_open, id, opts);
  }
  template <class T>
  Result<Seq<T>> open_seq(std::string_view id, Mode mode) const {
    return open_seq<T>(id, TableOptions{mode});
  }

  // What a collection handle names (an event's `table()`, say). (1.5)
  Result<CollectionKind> collection_kind(zen_table_t t) const {
    std::uint32_t k = 0;
    zen_status_t s = zen_table_kind(h_, t, &k);
    if (s != ZEN_OK) return Result<CollectionKind>::from(s);
    return static_cast<CollectionKind>(k);
  }

  // The change events queued since the last call (see ChangeRange).
  ChangeRange changes() const noexcept { return ChangeRange(h_); }
  // The table events queued since the last call (see TableChangeRange). (1.5)
  TableChangeRange table_changes() const noexcept { return TableChangeRange(h_); }
  // The messages to send (see OutboundRange); reuses this Context's buffer.
  OutboundRange outbound() noexcept { return OutboundRange(h_, out_); }

  Result<Metrics> metrics() const {
    Metrics m{};
    m.struct_size = sizeof(Metrics);
    zen_status_t s = zen_context_metrics(h_, &m);
    if (s != ZEN_OK) return Result<Metrics>::from(s);
    return m;
  }
  // Acknowledgement lag of member number `index` (0 .. metrics().peers - 1).
  Result<PeerLag> peer_lag(std::uint64_t index) const {
    PeerLag lag{};
    zen_status_t s = zen_context_peer_lag(h_, index, &lag);
    if (s != ZEN_OK) return Result<PeerLag>::from(s);
    return lag;
  }

  // Registers `merge` as the custom policy `name` for values of `T` (every peer must
  // register the same deterministic function under the same name). `merge` is called
  // as `std::optional<T>(const std::vector<zen::Candidate<T>>&)` inside `tick`, on the
  // ticking thread; it must not call this context. Returning nothing, or throwing, is a
  // failed merge: last-writer-wins decides on every peer alike (counted in
  // `merge_fallbacks`). The callable is destroyed exactly once: when replaced, or when
  // the context is freed (or now, if registering fails).
  template <class T, class F>
  Status register_merge(std::string_view name, F&& merge) const {
    using Fn = std::decay_t<F>;
    static_assert(std::is_invocable_r_v<std::optional<T>, Fn&, const std::vector<Candidate<T>>&>,
                  "a merge is called as std::optional<T>(const std::vector<zen::Candidate<T>>&)");
    auto held = std::make_unique<Fn>(std::forward<F>(merge));
    zen_status_t s = zen_context_register_merge(h_, name.data(), name.size(), &detail::merge_trampoline<T, Fn>,
                                                held.get(), &detail::delete_callable<Fn>);
    if (s != ZEN_OK) return Status::from(s);
    (void)held.release();  // the library owns it now
    return Status();
  }

 private:
  // Opens a table, set or sequence with `open` (zen_table_open, zen_set_open or
  // zen_seq_open) and `opts`.
  template <class C, class T, class Open>
  Result<C> open_collection(Open open, std::string_view id, const TableOptions& opts) const {
    zen_table_options_t o{};
    zen_status_t s = zen_table_options_default(&o);
    if (s != ZEN_OK) return Result<C>::from(s);
    o.mode = static_cast<std::uint32_t>(opts.mode);
    o.policy = static_cast<std::uint32_t>(opts.policy);
    o.custom_name = opts.custom.data();
    o.custom_name_len = opts.custom.size();
    o.owner = opts.owner.value_or(0);
    zen_table_t h{};
    s = open(h_, id.data(), id.size(), static_cast<std::uint32_t>(type_of<T>), &o, &h);
    if (s != ZEN_OK) return Result<C>::from(s);
    return C(h_, h);
  }

  template <class Bytes>
  static const std::uint8_t* byte_ptr(const Bytes& b) {
    static_assert(sizeof(*std::data(b)) == 1, "receive takes a container of bytes (uint8_t, char, std::byte)");
    return reinterpret_cast<const std::uint8_t*>(std::data(b));
  }
  zen_context_t h_{};
  std::vector<std::uint8_t> out_;
};

// ---- links: the in-process bus and ENet -----------------------------------------------------

// ENet settings (the library's defaults, changed with chained setters). Since 1.1.
class EnetOptions {
 public:
  EnetOptions() noexcept {
    if (zen_enet_options_default(&o_) != ZEN_OK) o_ = zen_enet_options_t{};
  }
  // Most clients a listen host accepts.
  EnetOptions& max_clients(std::uint32_t v) noexcept { return o_.max_clients = v, *this; }
  // A connection silent this long (ms) is dropped and its peer leaves.
  EnetOptions& timeout_ms(std::uint32_t v) noexcept { return o_.timeout_ms = v, *this; }
  // Most data messages a host takes from one client per second (the rest are dropped).
  EnetOptions& max_messages_per_s(std::uint32_t v) noexcept { return o_.max_messages_per_s = v, *this; }
  // The room a client asks for (a host with a room refuses others; a zen-relay gateway
  // keeps rooms apart) and the token it shows (a host with a token refuses others; a
  // gateway checks it). Copied here. Since 1.2.
  EnetOptions& room(std::string_view v) { return room_.assign(v.data(), v.size()), *this; }
  EnetOptions& token(std::string_view v) { return token_.assign(v.data(), v.size()), *this; }
  // The C struct, pointing into this object: valid while it lives unchanged.
  zen_enet_options_t capi() const noexcept {
    zen_enet_options_t o = o_;
    o.room = room_.data();
    o.room_len = room_.size();
    o.token = reinterpret_cast<const std::uint8_t*>(token_.data());
    o.token_len = token_.size();
    return o;
  }

 private:
  zen_enet_options_t o_{};
  std::string room_;
  std::string token_;
};

// One peer's link: a place on a `Bus`, or an ENet host or client (`enet_listen`,
// `enet_connect`). Pump its context with it once per frame instead of ticking the context
// and moving its messages yourself. Or a relay for a `Bridge` (`Bus::join_relay`,
// `enet_listen_relay`, `enet_connect_relay`): no peer of its own, never pumped. Move-only;
// leaves when destroyed (the others drop the member at their next pump). Pump it from the
// thread that owns its context. Since 1.1.
class Endpoint {
 public:
  Endpoint() noexcept = default;
  explicit Endpoint(zen_endpoint_t owned) noexcept : h_(owned) {}
  Endpoint(Endpoint&& o) noexcept : h_(std::exchange(o.h_, zen_endpoint_t{})) {}
  Endpoint& operator=(Endpoint&& o) noexcept {
    if (this != &o) {
      close();
      h_ = std::exchange(o.h_, zen_endpoint_t{});
    }
    return *this;
  }
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;
  ~Endpoint() { close(); }

  // Leaves the bus now (idempotent).
  void close() noexcept { zen_endpoint_free(std::exchange(h_, zen_endpoint_t{})); }
  // Gives up ownership: the handle is returned and this object is empty.
  [[nodiscard]] zen_endpoint_t release() noexcept { return std::exchange(h_, zen_endpoint_t{}); }
  explicit operator bool() const noexcept { return h_.id != 0; }
  zen_endpoint_t capi() const noexcept { return h_; }

  // One frame of `ctx` (the context of the peer this endpoint joined as): joins and
  // leaves become membership, messages are received, the context ticks to `now_ms`, its
  // messages go out.
  Status pump(const Context& ctx, std::uint64_t now_ms) const {
    return Status::from(zen_endpoint_pump(ctx.capi(), h_, now_ms));
  }
  // An ENet listen host for the context of `peer_id`, bound to `addr` ("0.0.0.0:7000";
  // port 0 picks a free one, see `local_port`). Clients connect to it and it forwards
  // between them, so only it must be reachable.
  static Result<Endpoint> enet_listen(std::string_view addr, std::uint64_t peer_id,
                                      const EnetOptions& opts = EnetOptions()) {
    zen_endpoint_t e{};
    const zen_enet_options_t c_opts = opts.capi();
    zen_status_t s = zen_enet_listen(addr.data(), addr.size(), peer_id, &c_opts, &e);
    if (s != ZEN_OK) return Result<Endpoint>::from(s);
    return Endpoint(e);
  }
  // An ENet client of the host at `host_addr` ("192.0.2.7:7000") for the context of
  // `peer_id`. If the host refuses it, `pump` reports ZEN_ERR_TRANSPORT with the reason.
  static Result<Endpoint> enet_connect(std::string_view host_addr, std::uint64_t peer_id,
                                       const EnetOptions& opts = EnetOptions()) {
    zen_endpoint_t e{};
    const zen_enet_options_t c_opts = opts.capi();
    zen_status_t s = zen_enet_connect(host_addr.data(), host_addr.size(), peer_id, &c_opts, &e);
    if (s != ZEN_OK) return Result<Endpoint>::from(s);
    return Endpoint(e);
  }
  // An ENet listen host with no peer of its own, for a `Bridge`: its clients see only the
  // peers the bridge carries (a server's rooms on threads behind one port).
  static Result<Endpoint> enet_listen_relay(std::string_view addr, const EnetOptions& opts = EnetOptions()) {
    zen_endpoint_t e{};
    const zen_enet_options_t c_opts = opts.capi();
    zen_status_t s = zen_enet_listen_relay(addr.data(), addr.size(), &c_opts, &e);
    if (s != ZEN_OK) return Result<Endpoint>::from(s);
    return Endpoint(e);
  }
  // An ENet client with no peer of its own, for a `Bridge`: the host and its clients see
  // only the peers the bridge carries (a game's threads behind one socket).
  static Result<Endpoint> enet_connect_relay(std::string_view host_addr, const EnetOptions& opts = EnetOptions()) {
    zen_endpoint_t e{};
    const zen_enet_options_t c_opts = opts.capi();
    zen_status_t s = zen_enet_connect_relay(host_addr.data(), host_addr.size(), &c_opts, &e);
    if (s != ZEN_OK) return Result<Endpoint>::from(s);
    return Endpoint(e);
  }
  // A peer of an ENet mesh for the context of `peer_id`, bound to `addr`: every pair of
  // peers connected directly (no relay hop; every peer must be reachable). It accepts the
  // peers that dial it; `dial` the others.
  static Result<Endpoint> enet_mesh(std::string_view addr, std::uint64_t peer_id,
                                    const EnetOptions& opts = EnetOptions()) {
    zen_endpoint_t e{};
    const zen_enet_options_t c_opts = opts.capi();
    zen_status_t s = zen_enet_mesh(addr.data(), addr.size(), peer_id, &c_opts, &e);
    if (s != ZEN_OK) return Result<Endpoint>::from(s);
    return Endpoint(e);
  }
  // Dials the mesh peer at `addr` ("192.0.2.7:7000") from a mesh endpoint; it becomes a
  // member at a later pump.
  Status dial(std::string_view addr) const { return Status::from(zen_endpoint_dial(h_, addr.data(), addr.size())); }
  // The UDP port of an ENet endpoint (ZEN_ERR_INVALID_ARGUMENT for a bus endpoint).
  Result<std::uint16_t> local_port() const {
    std::uint16_t port = 0;
    zen_status_t s = zen_endpoint_local_port(h_, &port);
    if (s != ZEN_OK) return Result<std::uint16_t>::from(s);
    return port;
  }
  // Messages and bytes sent and received (per recipient), dropped, and input refused.
  Result<zen_endpoint_stats_t> stats() const {
    zen_endpoint_stats_t st{};
    st.struct_size = sizeof st;
    zen_status_t s = zen_endpoint_stats(h_, &st);
    if (s != ZEN_OK) return Result<zen_endpoint_stats_t>::from(s);
    return st;
  }

 private:
  zen_endpoint_t h_{};
};

// Contexts on threads of one process, linked without a transport of your own: each joins
// as its peer id and pumps its `Endpoint`. Sends never block (a full queue drops and
// counts; the protocol repairs it). Move-only; thread-safe. Since 1.1.
class Bus {
 public:
  Bus() noexcept = default;
  explicit Bus(zen_bus_t owned) noexcept : h_(owned) {}
  Bus(Bus&& o) noexcept : h_(std::exchange(o.h_, zen_bus_t{})) {}
  Bus& operator=(Bus&& o) noexcept {
    if (this != &o) {
      close();
      h_ = std::exchange(o.h_, zen_bus_t{});
    }
    return *this;
  }
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;
  ~Bus() { close(); }

  static Result<Bus> create() {
    zen_bus_t h{};
    zen_status_t s = zen_bus_new(&h);
    if (s != ZEN_OK) return Result<Bus>::from(s);
    return Bus(h);
  }
  // Frees the bus handle; endpoints already joined keep working.
  void close() noexcept { zen_bus_free(std::exchange(h_, zen_bus_t{})); }
  explicit operator bool() const noexcept { return h_.id != 0; }
  zen_bus_t capi() const noexcept { return h_; }

  // Joins as `peer_id` (unique on the bus), with room for `capacity` unpumped messages.
  Result<Endpoint> join(std::uint64_t peer_id, std::size_t capacity = 256) const {
    zen_endpoint_t e{};
    zen_status_t s = zen_bus_join(h_, peer_id, capacity, &e);
    if (s != ZEN_OK) return Result<Endpoint>::from(s);
    return Endpoint(e);
  }
  // Joins as a relay for a `Bridge`: no peer of its own (nobody sees it join).
  Result<Endpoint> join_relay(std::size_t capacity = 1024) const {
    zen_endpoint_t e{};
    zen_status_t s = zen_bus_join_relay(h_, capacity, &e);
    if (s != ZEN_OK) return Result<Endpoint>::from(s);
    return Endpoint(e);
  }

 private:
  zen_bus_t h_{};
};

// Two relay endpoints joined on a thread of the library's: the peers each side reaches
// become members on the other (a game's main and worker contexts on a `Bus`, bridged to
// the network). Move-only; destroying it stops the thread and frees both endpoints (their
// peers leave the other side). Thread-safe. Since 1.1.
class Bridge {
 public:
  Bridge() noexcept = default;
  explicit Bridge(zen_bridge_t owned) noexcept : h_(owned) {}
  Bridge(Bridge&& o) noexcept : h_(std::exchange(o.h_, zen_bridge_t{})) {}
  Bridge& operator=(Bridge&& o) noexcept {
    if (this != &o) {
      close();
      h_ = std::exchange(o.h_, zen_bridge_t{});
    }
    return *this;
  }
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;
  ~Bridge() { close(); }

  // Starts bridging relays `a` and `b`, pumped every `period_ms` (1..=1000). On success
  // the bridge owns both endpoints (`a` and `b` are left empty); on failure they are
  // untouched.
  static Result<Bridge> start(Endpoint& a, Endpoint& b, std::uint32_t period_ms = 1) {
    zen_bridge_t h{};
    zen_status_t s = zen_bridge_start(a.capi(), b.capi(), period_ms, &h);
    if (s != ZEN_OK) return Result<Bridge>::from(s);
    (void)a.release();
    (void)b.release();
    return Bridge(h);
  }
  // Stops the thread and frees both endpoints (idempotent).
  void close() noexcept { zen_bridge_free(std::exchange(h_, zen_bridge_t{})); }
  explicit operator bool() const noexcept { return h_.id != 0; }
  zen_bridge_t capi() const noexcept { return h_; }
  // Messages and bytes moved across, peers carried, peers the other side refused.
  Result<zen_bridge_stats_t> stats() const {
    zen_bridge_stats_t st{};
    st.struct_size = sizeof st;
    zen_status_t s = zen_bridge_stats(h_, &st);
    if (s != ZEN_OK) return Result<zen_bridge_stats_t>::from(s);
    return st;
  }

 private:
  zen_bridge_t h_{};
};

// A context pumped on its endpoint by a library thread every `tick_ms`, for a server or
// worker with no frame loop of its own: keep using the context from your threads (set,
// get, `Value::wait_converged`), never tick or pump it yourself. Move-only; destroying it
// stops the thread and frees the endpoint (the peer leaves); the context stays yours
// (destroy the driver first). Since 1.1.
class Driver {
 public:
  Driver() noexcept = default;
  explicit Driver(zen_driver_t owned) noexcept : h_(owned) {}
  Driver(Driver&& o) noexcept : h_(std::exchange(o.h_, zen_driver_t{})) {}
  Driver& operator=(Driver&& o) noexcept {
    if (this != &o) {
      close();
      h_ = std::exchange(o.h_, zen_driver_t{});
    }
    return *this;
  }
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;
  ~Driver() { close(); }

  // Starts pumping `ctx` on `endpoint` (joined as ctx's peer) every `tick_ms`
  // (1..=1000). On success the driver owns the endpoint (`endpoint` is left empty); on
  // failure it is untouched.
  static Result<Driver> start(const Context& ctx, Endpoint& endpoint, std::uint32_t tick_ms = 16) {
    zen_driver_t h{};
    zen_status_t s = zen_driver_start(ctx.capi(), endpoint.capi(), tick_ms, &h);
    if (s != ZEN_OK) return Result<Driver>::from(s);
    (void)endpoint.release();
    return Driver(h);
  }
  // OK while pumping without trouble; else the first error a frame met:
  // ZEN_ERR_TRANSPORT when the ENet host refused the peer (pumping goes on), or what
  // stopped it (the context was freed or poisoned).
  Status check() const { return Status::from(zen_driver_check(h_)); }
  // Stops the thread and frees the endpoint (idempotent).
  void close() noexcept { zen_driver_free(std::exchange(h_, zen_driver_t{})); }
  explicit operator bool() const noexcept { return h_.id != 0; }
  zen_driver_t capi() const noexcept { return h_; }

 private:
  zen_driver_t h_{};
};

// ---- the network simulator --------------------------------------------------------------
#ifdef ZEN_CRDT_HPP_SIM

// One-way link behaviour (the library's default link, changed with chained setters).
class Link {
 public:
  Link() noexcept {
    if (zen_link_default(&l_) != ZEN_OK) l_ = zen_link_t{};
  }
  Link& latency_ms(std::uint64_t v) noexcept { return l_.latency_ms = v, *this; }
  Link& jitter_ms(std::uint64_t v) noexcept { return l_.jitter_ms = v, *this; }
  // Probabilities 0..1.
  Link& loss(double v) noexcept { return l_.loss = v, *this; }
  Link& duplicate(double v) noexcept { return l_.duplicate = v, *this; }
  Link& reorder(double v) noexcept { return l_.reorder = v, *this; }
  Link& bandwidth_bytes_per_s(std::uint64_t v) noexcept { return l_.bandwidth_bytes_per_s = v, *this; }
  const zen_link_t& capi() const noexcept { return l_; }

 private:
  zen_link_t l_{};
};

// A seeded simulated network to test a game against latency, loss and partitions.
// Move-only; owns the network, not the contexts attached to it.
class Net {
 public:
  Net() noexcept = default;
  explicit Net(zen_net_t owned) noexcept : h_(owned) {}
  Net(Net&& o) noexcept : h_(std::exchange(o.h_, zen_net_t{})) {}
  Net& operator=(Net&& o) noexcept {
    if (this != &o) {
      close();
      h_ = std::exchange(o.h_, zen_net_t{});
    }
    return *this;
  }
  Net(const Net&) = delete;
  Net& operator=(const Net&) = delete;
  ~Net() { close(); }

  static Result<Net> create(std::uint64_t seed, const Link& link = Link()) {
    zen_net_t h{};
    zen_status_t s = zen_net_new(seed, &link.capi(), &h);
    if (s != ZEN_OK) return Result<Net>::from(s);
    return Net(h);
  }
  void close() noexcept { zen_net_free(std::exchange(h_, zen_net_t{})); }
  explicit operator bool() const noexcept { return h_.id != 0; }
  zen_net_t capi() const noexcept { return h_; }

  // Attaches `ctx` as a new host, online and connected to every online host; returns
  // its host index.
  Result<std::uint32_t> attach(const Context& ctx) const {
    std::uint32_t host = 0;
    zen_status_t s = zen_net_attach(h_, ctx.capi(), &host);
    if (s != ZEN_OK) return Result<std::uint32_t>::from(s);
    return host;
  }
  Status set_online(std::uint32_t host, bool online) const {
    return Status::from(zen_net_set_online(h_, host, online));
  }
  // `groups[i]` is host i's group; all zeros heals.
  Status set_partition(const std::vector<std::uint32_t>& groups) const {
    return Status::from(zen_net_set_partition(h_, groups.data(), groups.size()));
  }
  // Delivers what is due at `now_ms`, ticks every online attached context, sends.
  Status step(std::uint64_t now_ms) const { return Status::from(zen_net_step(h_, now_ms)); }
  struct Stats {
    std::uint64_t delivered = 0;
    std::uint64_t dropped = 0;
  };
  Result<Stats> stats() const {
    Stats st;
    zen_status_t s = zen_net_stats(h_, &st.delivered, &st.dropped);
    if (s != ZEN_OK) return Result<Stats>::from(s);
    return st;
  }

 private:
  zen_net_t h_{};
};

#endif  // ZEN_CRDT_HPP_SIM

}  // namespace zen

#endif  // ZEN_CRDT_HPP
