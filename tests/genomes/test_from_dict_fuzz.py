"""``Genome.from_dict`` on generated malformed dictionaries: a valid genome or one
:class:`GenomeError` naming the field, never another exception (a run directory's
genomes are read with it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _fuzz import json_values, mutate  # noqa: E402

from evokeras.genomes.keyed import GenomeError  # noqa: E402
from evokeras.genomes.network import Genome  # noqa: E402
from evokeras.genomes.space import default_space  # noqa: E402
from evokeras.variation.network import random_genome

_SHAPES = {"image": (28, 28, 1), "sequence": (16, 3), "vector": (4,)}
BASES = [random_genome(np.random.default_rng(seed), default_space(family).replace(input_shape=shape, n_outputs=3))
         .to_dict() for family, shape in _SHAPES.items() for seed in range(4)]

json_value = json_values(allow_nan=True)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def test_from_dict_raises_only_genome_error(data: st.DataObject) -> None:
    d = mutate(json.loads(json.dumps(data.draw(st.sampled_from(BASES)))), data, json_value)
    try:
        genome = Genome.from_dict(d)
    except GenomeError as exc:
        assert "\n" not in str(exc)
    else:
        assert Genome.from_dict(genome.to_dict()) == genome


@pytest.mark.parametrize(("layer", "named"), [({"kind": ["conv"]}, "layers[0].kind"), ({"kind": {"a": 1}}, "layers[0].kind"),
                                              ({"kind": "dense", "units": 4, "skips": None}, "layers[0].skips"),
                                              ({"kind": "dense", "units": 4, "skips": "12"}, "layers[0].skips")])
def test_kind_and_skips_of_the_wrong_type(layer: dict, named: str) -> None:
    with pytest.raises(GenomeError, match=named.replace("[", r"\[").replace("]", r"\]")):
        Genome.from_dict({"layers": [layer]})
