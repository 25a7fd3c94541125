variable "release_name" {
  description = "Helm release name: a DNS-1123 label of at most 53 characters (Helm's limit)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.release_name)) && length(var.release_name) <= 53
    error_message = "release_name must be lowercase letters, digits and '-', start and end with a letter or digit, and be at most 53 characters (DNS-1123)."
  }
}

variable "namespace" {
  description = "Kubernetes namespace of the release: a DNS-1123 label."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.namespace)) && length(var.namespace) <= 63
    error_message = "namespace must be lowercase letters, digits and '-', start and end with a letter or digit, and be at most 63 characters (DNS-1123)."
  }
}

variable "chart_path" {
  description = "Path of the Helm chart directory (the repository's .helm). Keep it relative: it is stored in the state."
  type        = string

  validation {
    condition     = fileexists("${var.chart_path}/Chart.yaml")
    error_message = "chart_path must be a chart directory that contains Chart.yaml."
  }
}

variable "image_repository" {
  description = "Image repository, with its registry host, for example registry.example.com/api."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]+([._/:-][a-z0-9]+)*$", var.image_repository))
    error_message = "image_repository must be a lowercase image path such as registry.example.com/api or localhost:5001/api."
  }
}

variable "image_tag" {
  description = "Image tag, for example the short git sha."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "image_tag must be up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'."
  }
}

variable "image_digest" {
  description = "Optional image digest (sha256:...). When set, pods run the image by digest."
  type        = string
  default     = ""

  validation {
    condition     = var.image_digest == "" || can(regex("^sha256:[a-f0-9]{64}$", var.image_digest))
    error_message = "image_digest must be empty or sha256: followed by 64 hex digits."
  }
}

variable "values" {
  description = "Values documents (YAML), applied in order after the chart's values.yaml: for example the environment's values file, the service's, then the caller's own."
  type        = list(string)
  default     = []
}

variable "atomic" {
  description = "Roll the release back when the upgrade fails or times out (needs wait). Off by default: mage deploy follows the rollout and rolls back itself, failing fast."
  type        = bool
  default     = false
}

variable "wait" {
  description = "Wait until all resources are ready before the apply ends. Off by default: Helm's wait cannot be interrupted and waits out the whole timeout on a crashing pod."
  type        = bool
  default     = false
}

variable "timeout" {
  description = "Seconds Helm may take for the install or upgrade (and for the wait, when wait is on)."
  type        = number
  default     = 300

  validation {
    condition     = var.timeout > 0
    error_message = "timeout must be a number of seconds greater than 0."
  }
}

variable "max_history" {
  description = "Release revisions Helm keeps (0 keeps all)."
  type        = number
  default     = 10

  validation {
    condition     = var.max_history >= 0
    error_message = "max_history must be 0 or more."
  }
}

variable "create_namespace" {
  description = "Create the namespace when it does not exist."
  type        = bool
  default     = true
}

variable "cleanup_on_fail" {
  description = "Delete resources this upgrade created when it fails."
  type        = bool
  default     = true
}

variable "openapi_validation" {
  description = "Validate the rendered manifests against the cluster's OpenAPI schema before installing. It costs about half a second per install or upgrade (the schema is fetched and parsed each time); the API server checks types either way, and drops unknown fields with a warning."
  type        = bool
  default     = true
}
