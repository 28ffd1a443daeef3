// Registration functions of the emolive._core module, one per area.
#pragma once

#include <pybind11/pybind11.h>

namespace emolive::bindings {

void register_errors(pybind11::module_& m);
void register_model(pybind11::module_& m);
void register_engine(pybind11::module_& m);
void register_ports(pybind11::module_& m);

}  // namespace emolive::bindings
