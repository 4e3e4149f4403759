#include "common/tls/pki.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <charconv>
#include <ctime>

#include "common/openssl_error.h"

namespace dispotify::tls {
namespace {

constexpr std::string_view kSpiffePrefix = "spiffe://dispotify/";
constexpr size_t kMaxSegment = 64;  // also X.509's upper bound for O and CN, which carry them
constexpr size_t kMaxKind = 16;
constexpr int kSerialBits = 128;
constexpr auto kBackdate = std::chrono::minutes(5);

Status OpenSslError(std::string_view what) {
  return Status::IoError(std::string(what) + ": " + OpenSslErrors());
}

bool IsSegmentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

Status CheckSegment(std::string_view what, std::string_view s) {
  if (s.empty() || s.size() > kMaxSegment) {
    return Status::InvalidArgument(std::string(what) + " must be 1.." + std::to_string(kMaxSegment) +
                                   " characters");
  }
  if (s == "." || s == "..") return Status::InvalidArgument(std::string(what) + " may not be '.' or '..'");
  for (char c : s) {
    if (!IsSegmentChar(c))
      return Status::InvalidArgument(std::string(what) + " has a character outside [A-Za-z0-9._-]");
  }
  return Status::Ok();
}

Status CheckKind(std::string_view kind) {
  if (kind.empty() || kind.size() > kMaxKind) return Status::InvalidArgument("kind must be 1..16 letters");
  for (char c : kind) {
    if (c < 'a' || c > 'z') return Status::InvalidArgument("kind must be lower-case letters");
  }
  return Status::Ok();
}

std::optional<uint64_t> ParseNodeName(std::string_view name) {
  if (name.empty() || name[0] == '0') return std::nullopt;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), v);
  if (ec != std::errc() || end != name.data() + name.size()) return std::nullopt;
  return v;
}

Status CheckIdentity(const Identity& id) {
  DISPOTIFY_RETURN_IF_ERROR(CheckSegment("cluster id", id.cluster_id));
  DISPOTIFY_RETURN_IF_ERROR(CheckKind(id.kind));
  DISPOTIFY_RETURN_IF_ERROR(CheckSegment("name", id.name));
  if (id.is_node() && !ParseNodeName(id.name)) {
    return Status::InvalidArgument("a node's name must be its non-zero id in decimal without leading zeros");
  }
  return Status::Ok();
}

Result<std::string> BioToString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  if (len < 0 || (len > 0 && data == nullptr)) return OpenSslError("reading a memory BIO");
  return std::string(data, static_cast<size_t>(len));
}

BioPtr ReadBio(std::string_view pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

TimePoint FromAsn1Time(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return TimePoint{};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

Status SetValidity(X509* x, const Validity& v) {
  if (v.not_after <= v.not_before) return Status::InvalidArgument("validity ends before it starts");
  if (!ASN1_TIME_set(X509_getm_notBefore(x), std::chrono::system_clock::to_time_t(v.not_before)) ||
      !ASN1_TIME_set(X509_getm_notAfter(x), std::chrono::system_clock::to_time_t(v.not_after))) {
    return OpenSslError("setting the validity");
  }
  return Status::Ok();
}

// 128 random bits from OpenSSL's CSPRNG: unique without a serial counter to keep in sync between
// the operator, the local script and a restarted issuer.
Status SetRandomSerial(X509* x) {
  BnPtr bn(BN_new());
  if (!bn || BN_rand(bn.get(), kSerialBits, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1) {
    return OpenSslError("drawing a serial");
  }
  if (BN_is_zero(bn.get()) && BN_set_word(bn.get(), 1) != 1) return OpenSslError("drawing a serial");
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!serial || X509_set_serialNumber(x, serial.get()) != 1) return OpenSslError("setting the serial");
  return Status::Ok();
}

Status AddNameEntry(X509_NAME* name, const char* field, std::string_view value) {
  if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.data()),
                                 static_cast<int>(value.size()), -1, 0) != 1) {
    return OpenSslError(std::string("setting ") + field);
  }
  return Status::Ok();
}

// Extensions whose values are constants of ours go through OpenSSL's config syntax; anything
// carrying caller input (the SANs) is built as structures, so no input can inject config syntax.
Status AddConfExtension(X509* x, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx{};
  X509V3_set_ctx(&ctx, issuer, x, nullptr, nullptr, 0);
  X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(x, ext.get(), -1) != 1)
    return OpenSslError(std::string("adding ") + OBJ_nid2sn(nid));
  return Status::Ok();
}

Status PushIa5Name(GENERAL_NAMES* names, int type, std::string_view value) {
  GeneralNamePtr gn(GENERAL_NAME_new());
  ASN1_IA5STRING* s = ASN1_IA5STRING_new();
  if (!gn || !s || ASN1_STRING_set(s, value.data(), static_cast<int>(value.size())) != 1) {
    ASN1_IA5STRING_free(s);
    return OpenSslError("building a subjectAltName");
  }
  GENERAL_NAME_set0_value(gn.get(), type, s);
  if (sk_GENERAL_NAME_push(names, gn.get()) == 0) return OpenSslError("building a subjectAltName");
  (void)gn.release();  // owned by `names` now
  return Status::Ok();
}

Status CheckDnsName(std::string_view name) {
  std::string_view rest = name;
  if (rest.starts_with("*.")) rest.remove_prefix(2);
  if (rest.empty() || rest.size() > 253) return Status::InvalidArgument("bad DNS name: " + std::string(name));
  size_t label = 0;
  for (size_t i = 0; i <= rest.size(); ++i) {
    if (i == rest.size() || rest[i] == '.') {
      if (label == 0 || label > 63 || rest[i - 1] == '-' || rest[i - label] == '-') {
        return Status::InvalidArgument("bad DNS name: " + std::string(name));
      }
      label = 0;
      continue;
    }
    char c = rest[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return Status::InvalidArgument("bad DNS name: " + std::string(name));
    ++label;
  }
  return Status::Ok();
}

Status AddSubjectAltNames(X509* x, const LeafRequest& req) {
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (!names) return OpenSslError("building a subjectAltName");
  DISPOTIFY_RETURN_IF_ERROR(PushIa5Name(names.get(), GEN_URI, req.identity.Uri()));
  for (const auto& dns : req.dns_names) {
    DISPOTIFY_RETURN_IF_ERROR(CheckDnsName(dns));
    DISPOTIFY_RETURN_IF_ERROR(PushIa5Name(names.get(), GEN_DNS, dns));
  }
  for (const auto& ip : req.ip_addresses) {
    GeneralNamePtr gn(GENERAL_NAME_new());
    ASN1_OCTET_STRING* bytes = a2i_IPADDRESS(ip.c_str());
    if (bytes == nullptr) {
      ERR_clear_error();
      return Status::InvalidArgument("bad IP address: " + ip);
    }
    if (!gn) {
      ASN1_OCTET_STRING_free(bytes);
      return OpenSslError("building a subjectAltName");
    }
    GENERAL_NAME_set0_value(gn.get(), GEN_IPADD, bytes);
    if (sk_GENERAL_NAME_push(names.get(), gn.get()) == 0) return OpenSslError("building a subjectAltName");
    (void)gn.release();  // owned by `names` now
  }
  if (X509_add1_ext_i2d(x, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return OpenSslError("adding subjectAltName");
  }
  return Status::Ok();
}

Result<EvpPkeyPtr> NewP256Key() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("generating a P-256 key");
  return key;
}

Status Sign(X509* x, EVP_PKEY* key) {
  if (X509_sign(x, key, EVP_sha256()) <= 0) return OpenSslError("signing the certificate");
  return Status::Ok();
}

}  // namespace

Identity Identity::Node(std::string_view cluster_id, NodeId id) {
  return Identity{std::string(cluster_id), std::string(kNodeKind), std::to_string(id.value())};
}

std::optional<NodeId> Identity::node_id() const {
  if (!is_node()) return std::nullopt;
  auto v = ParseNodeName(name);
  if (!v) return std::nullopt;
  return NodeId(*v);
}

std::string Identity::Uri() const {
  return std::string(kSpiffePrefix) + cluster_id + "/" + kind + "/" + name;
}

Result<Identity> ParseSpiffeUri(std::string_view uri) {
  if (!uri.starts_with(kSpiffePrefix)) {
    return Status::InvalidArgument("not a spiffe://dispotify/ URI");
  }
  std::string_view rest = uri.substr(kSpiffePrefix.size());
  std::vector<std::string_view> parts;
  while (true) {
    size_t slash = rest.find('/');
    parts.push_back(rest.substr(0, slash));
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  if (parts.size() != 3) {
    return Status::InvalidArgument("a dispotify SPIFFE id has exactly three segments: cluster/kind/name");
  }
  Identity id{std::string(parts[0]), std::string(parts[1]), std::string(parts[2])};
  DISPOTIFY_RETURN_IF_ERROR(CheckIdentity(id));
  return id;
}

Result<Identity> ParseIdentity(X509* cert) {
  if (cert == nullptr) return Status::InvalidArgument("no certificate");
  int crit = 0;
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, nullptr)));
  if (!names) {
    ERR_clear_error();
    if (crit == -2) return Status::InvalidArgument("more than one subjectAltName extension");
    return Status::InvalidArgument("no subjectAltName");
  }
  std::optional<std::string_view> uri;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type != GEN_URI) continue;
    if (uri) return Status::InvalidArgument("more than one URI subjectAltName");
    const ASN1_IA5STRING* s = gn->d.uniformResourceIdentifier;
    uri = std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                           static_cast<size_t>(ASN1_STRING_length(s)));
  }
  if (!uri) return Status::InvalidArgument("no URI subjectAltName");
  return ParseSpiffeUri(*uri);
}

Validity Validity::Days(TimePoint now, int days) {
  return Validity{now - kBackdate, now + std::chrono::hours(24) * days};
}

Result<CertifiedKey> CreateCa(std::string_view cluster_id, const Validity& validity) {
  DISPOTIFY_RETURN_IF_ERROR(CheckSegment("cluster id", cluster_id));
  auto key = NewP256Key();
  if (!key.ok()) return key.status();
  X509Ptr x(X509_new());
  if (!x || X509_set_version(x.get(), X509_VERSION_3) != 1) return OpenSslError("creating a certificate");
  DISPOTIFY_RETURN_IF_ERROR(SetRandomSerial(x.get()));
  DISPOTIFY_RETURN_IF_ERROR(SetValidity(x.get(), validity));
  X509_NAME* name = X509_get_subject_name(x.get());
  DISPOTIFY_RETURN_IF_ERROR(AddNameEntry(name, "O", cluster_id));
  DISPOTIFY_RETURN_IF_ERROR(AddNameEntry(name, "CN", "dispotify CA"));
  if (X509_set_issuer_name(x.get(), name) != 1 || X509_set_pubkey(x.get(), key->get()) != 1) {
    return OpenSslError("filling the CA certificate");
  }
  DISPOTIFY_RETURN_IF_ERROR(
      AddConfExtension(x.get(), x.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  DISPOTIFY_RETURN_IF_ERROR(
      AddConfExtension(x.get(), x.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  DISPOTIFY_RETURN_IF_ERROR(AddConfExtension(x.get(), x.get(), NID_subject_key_identifier, "hash"));
  DISPOTIFY_RETURN_IF_ERROR(Sign(x.get(), key->get()));
  return CertifiedKey{std::move(x), std::move(key).value()};
}

Result<CertifiedKey> IssueLeaf(const CertifiedKey& ca, const LeafRequest& request) {
  if (!ca.cert || !ca.key) return Status::InvalidArgument("no CA");
  DISPOTIFY_RETURN_IF_ERROR(CheckIdentity(request.identity));
  DISPOTIFY_RETURN_IF_ERROR(KeyMatchesCert(ca.cert.get(), ca.key.get()));
  // The CA names its cluster in O; refusing a mismatch here keeps a tool run with the wrong
  // --cluster from producing certificates every peer would later refuse.
  X509_NAME* ca_name = X509_get_subject_name(ca.cert.get());
  int idx = X509_NAME_get_index_by_NID(ca_name, NID_organizationName, -1);
  if (idx < 0) return Status::InvalidArgument("the CA names no cluster");
  const ASN1_STRING* org = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(ca_name, idx));
  std::string_view ca_cluster(reinterpret_cast<const char*>(ASN1_STRING_get0_data(org)),
                              static_cast<size_t>(ASN1_STRING_length(org)));
  if (ca_cluster != request.identity.cluster_id) {
    return Status::InvalidArgument("the CA belongs to cluster '" + std::string(ca_cluster) + "', not '" +
                                   request.identity.cluster_id + "'");
  }

  auto key = NewP256Key();
  if (!key.ok()) return key.status();
  X509Ptr x(X509_new());
  if (!x || X509_set_version(x.get(), X509_VERSION_3) != 1) return OpenSslError("creating a certificate");
  DISPOTIFY_RETURN_IF_ERROR(SetRandomSerial(x.get()));
  DISPOTIFY_RETURN_IF_ERROR(SetValidity(x.get(), request.validity));
  X509_NAME* name = X509_get_subject_name(x.get());
  DISPOTIFY_RETURN_IF_ERROR(AddNameEntry(name, "O", request.identity.cluster_id));
  DISPOTIFY_RETURN_IF_ERROR(AddNameEntry(name, "OU", request.identity.kind));
  DISPOTIFY_RETURN_IF_ERROR(AddNameEntry(name, "CN", request.identity.name));
  if (X509_set_issuer_name(x.get(), ca_name) != 1 || X509_set_pubkey(x.get(), key->get()) != 1) {
    return OpenSslError("filling the certificate");
  }
  DISPOTIFY_RETURN_IF_ERROR(
      AddConfExtension(x.get(), ca.cert.get(), NID_basic_constraints, "critical,CA:FALSE"));
  DISPOTIFY_RETURN_IF_ERROR(
      AddConfExtension(x.get(), ca.cert.get(), NID_key_usage, "critical,digitalSignature"));
  DISPOTIFY_RETURN_IF_ERROR(
      AddConfExtension(x.get(), ca.cert.get(), NID_ext_key_usage, "serverAuth,clientAuth"));
  DISPOTIFY_RETURN_IF_ERROR(AddConfExtension(x.get(), ca.cert.get(), NID_subject_key_identifier, "hash"));
  DISPOTIFY_RETURN_IF_ERROR(
      AddConfExtension(x.get(), ca.cert.get(), NID_authority_key_identifier, "keyid:always"));
  DISPOTIFY_RETURN_IF_ERROR(AddSubjectAltNames(x.get(), request));
  DISPOTIFY_RETURN_IF_ERROR(Sign(x.get(), ca.key.get()));
  return CertifiedKey{std::move(x), std::move(key).value()};
}

Result<std::string> CertToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return OpenSslError("writing a certificate");
  return BioToString(bio.get());
}

Result<std::string> KeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslError("writing a key");
  }
  return BioToString(bio.get());
}

Result<std::vector<X509Ptr>> CertsFromPem(std::string_view pem) {
  ERR_clear_error();
  BioPtr bio = ReadBio(pem);
  if (!bio) return OpenSslError("reading PEM");
  std::vector<X509Ptr> certs;
  while (X509* raw = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) certs.emplace_back(raw);
  // The loop ends on "no start line" at the end of the input; anything else is a damaged block,
  // which must not pass for a shorter bundle.
  unsigned long err = ERR_peek_last_error();
  if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) {
    ERR_clear_error();
  } else if (err != 0) {
    return Status::InvalidArgument("damaged certificate PEM: " + OpenSslErrors());
  }
  if (certs.empty()) return Status::InvalidArgument("no certificate in PEM");
  return certs;
}

Result<X509Ptr> CertFromPem(std::string_view pem) {
  auto certs = CertsFromPem(pem);
  if (!certs.ok()) return certs.status();
  if (certs->size() != 1)
    return Status::InvalidArgument("expected one certificate, found " + std::to_string(certs->size()));
  return std::move(certs->front());
}

Result<EvpPkeyPtr> KeyFromPem(std::string_view pem) {
  ERR_clear_error();
  BioPtr bio = ReadBio(pem);
  if (!bio) return OpenSslError("reading PEM");
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return Status::InvalidArgument("no private key in PEM: " + OpenSslErrors());
  return key;
}

Status KeyMatchesCert(X509* cert, EVP_PKEY* key) {
  if (cert == nullptr || key == nullptr) return Status::InvalidArgument("no certificate or key");
  if (EVP_PKEY_eq(X509_get0_pubkey(cert), key) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument("the private key does not match the certificate");
  }
  return Status::Ok();
}

TimePoint NotAfter(X509* cert) {
  return FromAsn1Time(X509_get0_notAfter(cert));
}
TimePoint NotBefore(X509* cert) {
  return FromAsn1Time(X509_get0_notBefore(cert));
}

Status VerifyChain(X509* leaf, std::span<X509* const> roots, TimePoint now) {
  if (leaf == nullptr || roots.empty()) return Status::InvalidArgument("no certificate or no CA");
  if (X509_check_ca(leaf) != 0) return Status::InvalidArgument("a CA certificate is not a leaf");
  X509StorePtr store(X509_STORE_new());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !ctx) return OpenSslError("verifying a chain");
  for (X509* root : roots) {
    if (X509_STORE_add_cert(store.get(), root) != 1) return OpenSslError("adding a CA");
  }
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr) != 1)
    return OpenSslError("verifying a chain");
  X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_X509_STRICT);
  X509_STORE_CTX_set_time(ctx.get(), 0, std::chrono::system_clock::to_time_t(now));
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return Status::FailedPrecondition(std::string("certificate does not verify: ") +
                                      X509_verify_cert_error_string(err));
  }
  return Status::Ok();
}

Status VerifyChain(X509* leaf, X509* ca, TimePoint now) {
  X509* roots[] = {ca};
  return VerifyChain(leaf, roots, now);
}

}  // namespace dispotify::tls
