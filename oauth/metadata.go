package oauth

import "net/http"

// ServerMetadata is the RFC 8414 authorization server metadata.
type ServerMetadata struct {
	Issuer                                 string   `json:"issuer"`
	AuthorizationEndpoint                  string   `json:"authorization_endpoint"`
	TokenEndpoint                          string   `json:"token_endpoint"`
	RegistrationEndpoint                   string   `json:"registration_endpoint"`
	RevocationEndpoint                     string   `json:"revocation_endpoint"`
	ResponseTypesSupported                 []string `json:"response_types_supported"`
	ResponseModesSupported                 []string `json:"response_modes_supported"`
	GrantTypesSupported                    []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported          []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported      []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported []string `json:"revocation_endpoint_auth_methods_supported"`
	ScopesSupported                        []string `json:"scopes_supported"`
	ClientIDMetadataDocumentSupported      bool     `json:"client_id_metadata_document_supported"`
	AuthorizationResponseISSSupported      bool     `json:"authorization_response_iss_parameter_supported"`
	ServiceDocumentation                   string   `json:"service_documentation"`
}

// ResourceMetadata is the RFC 9728 protected resource metadata.
type ResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name"`
	ResourceDocumentation  string   `json:"resource_documentation"`
}

var authMethods = []string{"none", "client_secret_post", "client_secret_basic"}

// Metadata returns the authorization server metadata.
func (s *Server) Metadata() ServerMetadata {
	i := s.o.Issuer
	return ServerMetadata{
		Issuer:                                 i,
		AuthorizationEndpoint:                  i + "/api/oauth/authorize",
		TokenEndpoint:                          i + "/api/oauth/token",
		RegistrationEndpoint:                   i + "/api/oauth/register",
		RevocationEndpoint:                     i + "/api/oauth/revoke",
		ResponseTypesSupported:                 []string{"code"},
		ResponseModesSupported:                 []string{"query"},
		GrantTypesSupported:                    []string{"authorization_code", "refresh_token"},
		CodeChallengeMethodsSupported:          []string{"S256"},
		TokenEndpointAuthMethodsSupported:      authMethods,
		RevocationEndpointAuthMethodsSupported: authMethods,
		ScopesSupported:                        AllScopes,
		ClientIDMetadataDocumentSupported:      true,
		AuthorizationResponseISSSupported:      true,
		ServiceDocumentation:                   i + "/connect",
	}
}

// ProtectedResource returns the protected resource metadata of resource.
func (s *Server) ProtectedResource(resource string) ResourceMetadata {
	return ResourceMetadata{
		Resource:               resource,
		AuthorizationServers:   []string{s.o.Issuer},
		ScopesSupported:        AllScopes,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "imap-mcp",
		ResourceDocumentation:  s.o.Issuer + "/connect",
	}
}

func (s *Server) serverMetadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=3600")
	writeJSON(w, http.StatusOK, s.Metadata())
}

func (s *Server) resourceMetadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=3600")
	writeJSON(w, http.StatusOK, s.ProtectedResource(s.resourceFor(r.URL.Path)))
}
