// The commands of the poolguard tool, one file each (tools/cmd_*.cpp); tools/main.cpp dispatches.
// Each takes the arguments after its name and returns the exit status.
#pragma once

#include <string>
#include <vector>

namespace pg::tool {

int cmd_run(const std::vector<std::string>& args);        // tools/cmd_run.cpp
int cmd_stat(const std::vector<std::string>& args);       // tools/cmd_stat.cpp
int cmd_ls(const std::vector<std::string>& args);         // tools/cmd_ls.cpp
int cmd_map(const std::vector<std::string>& args);        // tools/cmd_map.cpp
int cmd_profile(const std::vector<std::string>& args);    // tools/cmd_profile.cpp
int cmd_symbolize(const std::vector<std::string>& args);  // tools/cmd_symbolize.cpp
int cmd_export(const std::vector<std::string>& args);     // tools/cmd_export.cpp
int cmd_record(const std::vector<std::string>& args);     // tools/cmd_record.cpp
int cmd_plot(const std::vector<std::string>& args);       // tools/cmd_plot.cpp

}  // namespace pg::tool
