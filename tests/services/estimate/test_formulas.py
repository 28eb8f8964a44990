"""FLOP and memory arithmetic of full and LoRA training, and the memory refusal."""

from __future__ import annotations

import pytest

from services.core.errors import BadInput
from services.estimate.estimate import DEFAULT_EFFICIENCY, Device, Request, check_memory
from services.estimate.formulas import BASES, lora_params, memory_bytes, training_flops
from services.estimate.gpus import find_gpu


def test_full_training_is_6nd_and_lora_on_a_frozen_base_is_4nd() -> None:
    assert training_flops("full", 1e6, 1e3) == 6e9
    assert training_flops("lora", 1e6, 1e3) == 4e9


def test_lora_adapters_are_rank_times_in_plus_out_per_matrix() -> None:
    # 2 layers x rank 8 x (a 64->64 matrix and a 64->16 one)
    assert lora_params(2, 8, ((64, 64), (64, 16))) == 2 * 8 * (128 + 80)
    assert BASES["smollm2-135m"].trainable == 460_800  # q and v of 30 layers, rank 8, as trained


def test_full_training_holds_16_bytes_per_parameter_lora_2_for_the_frozen_base() -> None:
    full, lora = BASES["scratch-135m"], BASES["smollm2-135m"]
    m_full, m_lora = memory_bytes(full, 1024, 1), memory_bytes(lora, 1024, 1)
    assert m_full["weights_grads_adamw"] == 16 * full.params
    assert m_lora["frozen_base"] == 2 * lora.params
    assert m_lora["adapters_grads_adamw"] == 16 * lora.trainable
    assert m_full["activations"] == m_lora["activations"] > 0
    assert m_full["total"] > m_lora["total"]


def _device(gpu: str) -> Device:
    g = find_gpu(gpu)
    return Device(g.name, DEFAULT_EFFICIENCY, gpu=g)


def test_a_configuration_larger_than_the_gpu_is_refused_with_its_parts() -> None:
    request = Request(pages=[1], base="scratch-135m", gpu="L4", context=4096, batch=16)
    with pytest.raises(BadInput) as err:
        check_memory(BASES["scratch-135m"], _device("L4"), request)
    message = str(err.value)
    assert "L4" in message and "activations" in message and "lower --batch" in message


def test_the_same_model_fits_a_larger_gpu() -> None:
    request = Request(pages=[1], base="scratch-135m", gpu="H200", context=4096, batch=16)
    need = check_memory(BASES["scratch-135m"], _device("H200"), request)
    assert need["total"] < find_gpu("H200").memory_bytes


def test_an_unknown_gpu_lists_the_known_ones() -> None:
    with pytest.raises(BadInput) as err:
        find_gpu("Voodoo 3")
    assert "Voodoo 3" in str(err.value) and "H100 SXM" in str(err.value) and "RTX 4090" in str(err.value)


def test_torch_names_map_to_table_rows() -> None:
    assert find_gpu("NVIDIA H200").name == "H200"
    assert find_gpu("NVIDIA GeForce RTX 4090").name == "RTX 4090"
