"""The MLflow model registry as tunesmith uses it: versions, the ``champion`` / ``previous`` aliases, and
scikit-learn models saved in the skops format.

Models are never unpickled: a model is saved with MLflow's scikit-learn flavour in the skops format, and read back
with ``skops.io.load`` trusting only types from an allow-list of modules (scikit-learn, numpy, scipy); a model that
needs anything else is refused, whatever its own MLmodel file claims to trust.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.tracking.mlflow_tracker import import_mlflow, mlflow_client

CHAMPION, PREVIOUS = "champion", "previous"
TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.", "tunesmith.")


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    run_id: str | None
    source: str
    tags: Mapping[str, str] = field(default_factory=dict)


class UntrustedModel(Exception):
    """A stored model would need types outside the allow-list to load."""


class ModelFilesUnreadable(Exception):
    """A registered version's files cannot be fetched from its source (gone: an MLflow database moved or restored
    without its artifact folder). The message is MLflow's reason, its first line."""


class ModelRegistry:
    def __init__(self, uri: str, field: str = "--tracking-uri") -> None:
        from tunesmith.tracking import check_registry_installed

        check_registry_installed("registry", "reading or writing registered models")  # not an import error
        self.uri = uri
        self.field = field  # where the URI came from, for errors about it
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = mlflow_client(self.uri, self.field)
        return self._client

    def missing_database(self) -> str | None:
        """The SQLite file the registry's URI names, where it does not exist (None: it does, or the URI names no
        file). Reading never creates it (:meth:`by_alias`, :meth:`versions`); the first write would."""
        from tunesmith.tracking.destination import missing_sqlite_file

        return missing_sqlite_file(self.uri)

    def by_alias(self, name: str, alias: str) -> ModelVersion | None:
        """The version holding ``alias`` (None when the model or the alias does not exist, or the registry's SQLite
        file does not: MLflow would create an empty one to read it, where a moved registry was).

        Raises:
            RegistryUnavailable: the registry did not answer (a server down, its SQLite file locked): not "none".
        """
        if self.missing_database() is not None:
            return None
        client = self.client  # first: a URI MLflow must not be given is refused before MLflow loads (seconds)
        from mlflow.exceptions import MlflowException

        try:
            with self._read():  # a server down read as "no champion": a cycle tuned, then failed
                mv = client.get_model_version_by_alias(name, alias)
        except MlflowException as e:
            if e.error_code in _ABSENT:
                return None
            raise
        return _version(mv)

    def aliases(self, name: str) -> dict[str, str]:
        """Every alias of ``name`` and the version it names, read at once ({} when the model does not exist, nor the
        registry's SQLite file).

        Raises:
            RegistryUnavailable: the registry did not answer (a server down, its SQLite file locked).
        """
        if self.missing_database() is not None:
            return {}
        client = self.client
        from mlflow.exceptions import MlflowException

        try:
            with self._read():
                found = client.get_registered_model(name)
        except MlflowException as e:
            if e.error_code == "RESOURCE_DOES_NOT_EXIST":
                return {}
            raise
        return {str(alias): str(version) for alias, version in (found.aliases or {}).items()}

    @contextmanager
    def _read(self) -> Iterator[None]:
        """A read of the registry: one it could not answer now (MLflow's TEMPORARILY_UNAVAILABLE: an SQLite file
        another process holds locked past its 20 s wait) raised as RegistryUnavailable, not read as nothing there."""
        from mlflow.exceptions import MlflowException

        from tunesmith.errors import RegistryUnavailable
        from tunesmith.redaction import redact

        with registry_reached(self.uri):
            try:
                yield
            except MlflowException as e:
                if e.error_code != "TEMPORARILY_UNAVAILABLE":
                    raise
                said = (str(e.message).strip().splitlines() or ["no reason given"])[0]
                raise RegistryUnavailable(f"{self.field}: the MLflow registry at {redact(self.uri)} could not be "
                                          f"read now ({said}); worth retrying later (another process writing to "
                                          "its database, a server restarting)") from e

    def version(self, name: str, version: str) -> ModelVersion:
        return _version(self.client.get_model_version(name, version))

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, oldest first ([] when the model does not exist, nor the registry's file).

        Raises:
            RegistryUnavailable: the registry did not answer.
        """
        if self.missing_database() is not None:
            return []
        # MLflow's filter takes no escapes (name='it\\'s' matched nothing): the other quote where the name has one,
        # and every version, sifted here, where it has both
        quote = next((q for q in "'\"" if q not in name), None)
        client = self.client
        with self._read():  # a server down: RegistryUnavailable (exit 75), as for by_alias, not MLflow's raw error
            found = client.search_model_versions(f"name={quote}{name}{quote}" if quote else None)
        return sorted((_version(mv) for mv in found if mv.name == name), key=lambda v: int(v.version))

    def log_sklearn(self, run_id: str, model: Any, sample: Any, artifact_path: str = "model",
                    trusted: list[str] | None = None) -> str:
        """Save ``model`` with MLflow's scikit-learn flavour (skops) into run ``run_id``, with a signature inferred
        from the feature rows ``sample``; returns its artifact URI.

        MLflow loads what it saved to check it, trusting only skops' defaults: a tree (``sklearn.tree._tree.Tree``,
        in every forest and boosted model) failed that check, and every promote of one. The types the model needs
        are trusted when the allow-list (``TRUSTED_MODULES``, as :meth:`load_sklearn` reads them back) covers them.
        ``trusted``: what :func:`check_storable` already returned for this model (checking serializes it whole).

        Raises:
            UntrustedModel: the model needs types outside the allow-list (a class of the user's own).
        """
        mlflow = import_mlflow()
        import sklearn
        from mlflow.models import infer_signature

        from tunesmith import __version__

        needed = trusted if trusted is not None else check_storable(model)
        signature = infer_signature(sample, model.predict(sample))
        requirements = [f"scikit-learn=={sklearn.__version__}", "skops"]
        if any(t.startswith("tunesmith.") for t in needed):  # a step of tunesmith's: loading it imports tunesmith
            requirements.append(f"tunesmith=={__version__}")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, artifact_path)
            mlflow.sklearn.save_model(model, path, serialization_format="skops", signature=signature,
                                      pip_requirements=requirements, skops_trusted_types=needed)
            self.client.log_artifacts(run_id, path, artifact_path)
        return f"{self.client.get_run(run_id).info.artifact_uri}/{artifact_path}"

    def log_folder(self, run_id: str, folder: str, artifact_path: str = "model") -> str:
        """Upload a model folder a trial handed over; returns its artifact URI."""
        self.client.log_artifacts(run_id, folder, artifact_path)
        return f"{self.client.get_run(run_id).info.artifact_uri}/{artifact_path}"

    def logged_folder(self, experiment_name: str, run_tags: Mapping[str, str], folder: str) -> str | None:
        """The artifact URI of ``folder`` in the run of MLflow experiment ``experiment_name`` that has every tag of
        ``run_tags`` (None: no such experiment, run, or folder in it). Reads only: nothing is created (nor the
        registry's SQLite file, where it does not exist)."""
        if self.missing_database() is not None:
            return None
        client = self.client
        with registry_reached(self.uri):
            found = client.get_experiment_by_name(experiment_name)
            if found is None:
                return None
            # MLflow's filter takes no escapes: a value it could misread (a quote in a name) is sifted here instead
            plain = [f"tags.`{k}` = '{v}'" for k, v in run_tags.items() if re.fullmatch(r"[\w.+\- ]*", v)]
            for run in client.search_runs([found.experiment_id], filter_string=" AND ".join(plain), max_results=100):
                if all(run.data.tags.get(k) == v for k, v in run_tags.items()) \
                        and client.list_artifacts(run.info.run_id, folder):
                    return f"{run.info.artifact_uri}/{folder}"
        return None

    def register(self, name: str, source: str, run_id: str | None, tags: Mapping[str, str]) -> ModelVersion:
        """A new version of ``name`` (created on first use) pointing at ``source``."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            self.client.create_registered_model(name)
        mv = self.client.create_model_version(name, source, run_id=run_id, tags=dict(tags))
        return _version(mv)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        self.client.delete_registered_model_alias(name, alias)

    def set_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.client.set_model_version_tag(name, version, key, value)

    def load_sklearn(self, version: ModelVersion) -> Any:
        """The version's scikit-learn model, read with skops trusting only the allow-listed modules.

        Raises:
            UntrustedModel: the file needs other types, or the version is not a skops scikit-learn model.
            ModelFilesUnreadable: its files cannot be fetched from ``version.source``.
            RegistryUnavailable: no server answered.
        """
        import skops.io
        import yaml
        from mlflow.artifacts import download_artifacts
        from mlflow.exceptions import MlflowException

        try:
            with registry_reached(self.uri):  # a server down is not files gone: it is retried (exit 75)
                local = Path(download_artifacts(artifact_uri=version.source, tracking_uri=self.uri))
        except (MlflowException, OSError) as e:
            raise ModelFilesUnreadable((str(e).strip().splitlines() or [type(e).__name__])[0]) from None
        mlmodel = local / "MLmodel"
        if not mlmodel.is_file():
            raise UntrustedModel(f"version {version.version} is not an MLflow model (no MLmodel file)")
        flavor = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors", {}).get("sklearn") or {}
        if flavor.get("serialization_format") != "skops":
            raise UntrustedModel(f"version {version.version} is not stored in the skops format "
                                 f"({flavor.get('serialization_format', 'no sklearn flavour')}); it is not loaded")
        path = local / str(flavor.get("pickled_model", "model.skops"))
        needed = skops.io.get_untrusted_types(file=str(path))
        refused = [t for t in needed if not t.startswith(TRUSTED_MODULES)]
        if refused:
            raise UntrustedModel(f"version {version.version} needs types outside the allow-list: {refused}")
        return skops.io.load(str(path), trusted=needed)


def check_storable(model: Any) -> list[str]:
    """The types ``model`` needs trusted to be read back (:meth:`ModelRegistry.log_sklearn` stores it with them),
    checked against the allow-list: asked by ``promote --dry-run`` too, which said "every gate passed" for a model the
    promote then refused.

    Raises:
        UntrustedModel: it needs types outside the allow-list (a class of the user's own).
    """
    import skops.io

    needed = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    refused = [t for t in needed if not t.startswith(TRUSTED_MODULES)]
    if refused:
        raise UntrustedModel(f"the model needs types outside the allow-list ({', '.join(TRUSTED_MODULES)}): "
                             f"{refused}; it is not stored (a trial that saves its own model folder is "
                             "promoted as it saved it)")
    return list(needed)


# MLflow's error codes for "no such thing" (an unknown model; an unknown alias of one); any other is not "none"
_ABSENT = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})

# A host the resolver says does not exist: the URI's typo (exit 2), as for the store's address; its "temporary failure
# in name resolution" (a name server restarting) passes, as a refused connection or a timeout does (exit 75).
_NO_SUCH_HOST = re.compile(r"Name or service not known|nodename nor servname|No address associated with hostname")


@contextmanager
def registry_reached(uri: str | None) -> Iterator[None]:
    """Reaching the MLflow server at ``uri`` (None: the spec's), its client's calls inside: MLflow's error for a
    server that did not answer (its request's ConnectionError or Timeout, chained) raised as RegistryUnavailable, for
    an unknown host as UserInputError; any other error as it was.

    Raises:
        RegistryUnavailable: no server answered (refused, timed out, no name server): retry later, exit 75.
        UserInputError: the URI's host does not exist.
    """
    import requests

    from tunesmith.errors import RegistryUnavailable, UserInputError
    from tunesmith.redaction import redact

    shown = redact(uri) if uri else "the spec's tracking URI"
    try:
        yield
    except Exception as e:
        cause: BaseException | None = e
        while cause is not None and not isinstance(cause, requests.ConnectionError | requests.Timeout):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        said = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        if _NO_SUCH_HOST.search(said):
            raise UserInputError(f"tracking.mlflow.uri: {shown}: the host is not known ({said}); check the "
                                 "host name in the tracking URI") from e
        raise RegistryUnavailable(f"tracking.mlflow.uri: no MLflow tracking server answers at {shown} "
                                  f"({said}); worth retrying later (a server restarting, a network outage); if it "
                                  "persists, check the host and port (a wrong port looks the same as a server that is "
                                  "down) and that the server is running") from e


def _version(mv: Any) -> ModelVersion:
    return ModelVersion(str(mv.name), str(mv.version), mv.run_id, str(mv.source), dict(mv.tags or {}))
